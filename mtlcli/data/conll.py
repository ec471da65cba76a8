"""NER records: CoNLL column files and JSONL, checked and converted to IOB2 tags."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mtlcli.data.examples import NerExample
from mtlcli.errors import Problem

# Columns are split on ASCII spaces and tabs only: tokens may contain other Unicode spaces
# (WNUT-17 has zero-width and no-break ones) that str.split() would cut them at.
_COLUMN_SEPARATOR = re.compile(r"[ \t]+")
_WHITESPACE = " \t\r\f\v"  # a line holding only these separates sentences (WNUT-17 uses a lone tab)
_TAG = re.compile(r"O|[BI]-.+")  # IOB1 or IOB2; IOBES and other schemes are rejected, not guessed at

JSONL_COLUMNS = {"tokens": ("tokens",), "tags": ("tags", "ner_tags")}  # also the Hub datasets' names
JSONL_REQUIRED = ("tokens", "tags")


def to_iob2(tags: list[str]) -> list[str]:
    """IOB1 -> IOB2: an I-T that starts an entity (sentence-initial, or after O or another type) becomes B-T.
    IOB2 input comes back unchanged."""
    converted = []
    previous_type = None  # entity type of the previous token, None after O
    for tag in tags:
        entity_type = None if tag == "O" else tag[2:]
        if tag.startswith("I-") and entity_type != previous_type:
            tag = "B-" + entity_type
        converted.append(tag)
        previous_type = entity_type
    return converted


def parse_conll(text: str, file: str, problems: list[Problem]) -> list[NerExample]:
    """Sentences from a column file (token first, tag last); bad sentences are left out and their problems appended."""
    name = Path(file).name
    examples = []
    for document, sentence in _sentences(text):
        found = []
        for number, columns in sentence:
            if len(columns) < 2:
                found.append(Problem(file, str(number), "tag column missing"))
            elif not _TAG.fullmatch(columns[-1]):
                found.append(Problem(file, str(number), f"unknown tag '{columns[-1]}' (expected O, B-TYPE or I-TYPE)"))
        if found:
            problems.extend(found)
            continue
        tokens = [columns[0] for _, columns in sentence]
        tags = [columns[-1] for _, columns in sentence]
        examples.append(NerExample(f"{name}:{sentence[0][0]}", tokens, to_iob2(tags), document))
    return examples


def _sentences(text: str) -> Iterator[tuple[int, list[tuple[int, list[str]]]]]:
    """Group (line number, columns) into sentences, each with its document: the number of -DOCSTART- lines before
    it. Blank lines and -DOCSTART- lines end a sentence; -DOCSTART- may open a document (CoNLL-2003) or close it
    (Wikigold): either way it separates two."""
    sentence: list[tuple[int, list[str]]] = []
    document = 0
    # Split on "\n" only: str.splitlines() would also break lines at Unicode separators inside tokens.
    for number, line in enumerate(text.split("\n"), start=1):
        columns = _COLUMN_SEPARATOR.split(line.strip(_WHITESPACE))
        if columns == [""] or columns[0] == "-DOCSTART-":
            if sentence:
                yield document, sentence
            sentence = []
            document += columns[0] == "-DOCSTART-"
        else:
            sentence.append((number, columns))
    if sentence:
        yield document, sentence


def ner_from_records(
    records: Iterable[tuple[int, dict[str, Any]]], file: str, problems: list[Problem]
) -> list[NerExample]:
    """Sentences from JSONL records {"tokens": [...], "tags": [...]}."""
    name = Path(file).name
    examples = []
    for line, fields in records:
        tokens, tags = fields["tokens"], fields["tags"]
        what = record_problem(tokens, tags)
        if what:
            problems.append(Problem(file, str(line), what))
            continue
        examples.append(NerExample(f"{name}:{line}", list(tokens), to_iob2(tags)))
    return examples


def record_problem(tokens: Any, tags: Any) -> str:
    """What is wrong with one JSONL sentence, or "" if nothing."""
    if not isinstance(tokens, list) or not all(isinstance(token, str) and token for token in tokens):
        return "tokens must be a list of non-empty strings"
    if not tokens:
        return "sentence has no tokens"
    if isinstance(tags, list) and any(isinstance(tag, int) for tag in tags):
        return "tags are numbers; the reader needs tag names such as 'B-PER'"
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return "tags must be a list of strings"
    if len(tags) != len(tokens):
        return f"tokens and tags differ in length ({len(tokens)} vs {len(tags)})"
    unknown = next((tag for tag in tags if not _TAG.fullmatch(tag)), None)
    if unknown is not None:
        return f"unknown tag '{unknown}' (expected O, B-TYPE or I-TYPE)"
    return ""
