"""Text classification records: a text (or a pair of texts) and a label per CSV/TSV row, JSONL line or dataset row."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mtlcli.data.examples import ClsExample
from mtlcli.errors import Problem

# a second text makes a pair (NLI, paraphrase): the names of GLUE, SNLI/MNLI and QQP are accepted
COLUMNS = {
    "text": ("text", "sentence", "sentence1", "premise", "question1", "Text"),
    "label": ("label", "category", "intent", "Label"),
    "text_pair": ("text_pair", "sentence2", "hypothesis", "question2"),
}
REQUIRED = ("text", "label")


def cls_from_records(
    records: Iterable[tuple[int, dict[str, Any]]], file: str, problems: list[Problem]
) -> list[ClsExample]:
    """Examples with id "FILENAME:LINE"; records with a bad text or label are left out and their problems appended."""
    name = Path(file).name
    examples = []
    for line, fields in records:
        text, label, pair = fields["text"], fields["label"], fields.get("text_pair")
        what = record_problem(text, label, pair)
        if what:
            problems.append(Problem(file, str(line), what))
            continue
        examples.append(example(f"{name}:{line}", text, label, pair))
    return examples


def example(example_id: str, text: str, label: str | int, pair: str | None) -> ClsExample:
    # JSONL labels may be integers; labels are names from here on. Stray spaces would make a new label.
    return ClsExample(example_id, text, str(label).strip(), pair)


def record_problem(text: Any, label: Any, pair: Any = None) -> str:
    """What is wrong with one record, or "" if nothing; `pair` is None for a single text."""
    texts = {"text": text} if pair is None else {"text": text, "text_pair": pair}
    for name, value in texts.items():
        if not isinstance(value, str):
            return f"{name} must be a string"
        if not value.strip():
            return f"empty {name}"
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        return "label must be a string or an integer"
    if not str(label).strip():
        return "empty label"
    return ""
