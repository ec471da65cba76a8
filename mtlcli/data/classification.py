"""Text classification records: a text and a label per CSV/TSV row or JSONL line."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mtlcli.data.examples import ClsExample
from mtlcli.errors import Problem

COLUMNS = {
    "text": ("text", "sentence", "Text"),
    "label": ("label", "category", "intent", "Label"),
}
REQUIRED = ("text", "label")


def cls_from_records(
    records: Iterable[tuple[int, dict[str, Any]]], file: str, problems: list[Problem]
) -> list[ClsExample]:
    """Examples with id "FILENAME:LINE"; records with a bad text or label are left out and their problems appended."""
    name = Path(file).name
    examples = []
    for line, fields in records:
        text, label = fields["text"], fields["label"]
        what = _record_problem(text, label)
        if what:
            problems.append(Problem(file, str(line), what))
            continue
        # JSONL labels may be integers; labels are names from here on. Stray spaces would make a new label.
        examples.append(ClsExample(f"{name}:{line}", text, str(label).strip()))
    return examples


def _record_problem(text: Any, label: Any) -> str:
    """What is wrong with one record, or "" if nothing."""
    if not isinstance(text, str):
        return "text must be a string"
    if not text.strip():
        return "empty text"
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        return "label must be a string or an integer"
    if not str(label).strip():
        return "empty label"
    return ""
