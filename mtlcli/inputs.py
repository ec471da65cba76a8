"""Inputs of the predict commands: texts from arguments, a file (one per line) or stdin; JSONL records.

Texts are kept exactly as given (only the line break is removed), so that character offsets index
the user's own text. Problems are collected over the whole input and raised as one InputError
naming file and line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from .errors import InputError, Problem

STDIN = "<stdin>"


@dataclass
class TextItem:
    text: str
    id: str | None = None
    text_pair: str | None = None  # classification of sentence pairs (NLI, paraphrase): the second text


@dataclass
class QaItem:
    question: str
    context: str
    id: str | None = None


def read_source(path: str) -> tuple[str, str]:
    """(name for messages, whole content) of a file or of stdin ("-"), decoded as UTF-8."""
    if path == "-":
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read() if stream is not None else sys.stdin.read()
        name = STDIN
    else:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            raise InputError(Problem(path, "", "file not found")) from None
        except IsADirectoryError:
            raise InputError(Problem(path, "", "is a directory, not a file")) from None
        except OSError as err:
            raise InputError(Problem(path, "", f"cannot read: {err.strerror or err}")) from None
        name = path
    if isinstance(data, str):
        return name, data
    try:
        return name, data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(Problem(name, str(line), f"not UTF-8 text (byte {err.start})")) from None


def split_lines(data: str) -> list[str]:
    """Lines without their line break ("\\n" or "\\r\\n"); every other character, tabs and Unicode
    separators included, stays part of the text."""
    if not data:
        return []
    lines = data.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_texts(path: str) -> list[TextItem]:
    _, data = read_source(path)
    return [TextItem(line) for line in split_lines(data)]


def read_jsonl(
    path: str, fields: dict[str, bool], skip_bad: bool = False, optional: tuple[str, ...] = ()
) -> tuple[list[dict], int]:
    """Records of a JSONL file or stdin: `fields` maps each field to whether it must be non-blank text; `optional`
    fields, when present, must be non-blank text. An optional "id" (string or number) passes through. Blank lines
    are skipped. Returns (records, skipped)."""
    name, data = read_source(path)
    records, problems = [], []
    for number, line in enumerate(split_lines(data), start=1):
        if not line.strip():
            continue
        found = _record(line, fields, optional)
        if isinstance(found, str):
            problems.append(Problem(name, str(number), found))
        else:
            records.append(found)
    if problems and not skip_bad:
        raise InputError(problems)
    return records, len(problems)


def _record(line: str, fields: dict[str, bool], optional: tuple[str, ...]) -> dict | str:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        return f"not valid JSON ({err.msg}, column {err.colno})"
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    record = {}
    fields = fields | {key: True for key in optional if key in obj}
    for key, required in fields.items():
        if key not in obj:
            return f"'{key}' is missing"
        value = obj[key]
        if not isinstance(value, str):
            return f"'{key}' must be a string, got {type(value).__name__}"
        if required and not value.strip():
            return f"the {key} is empty"
        record[key] = value
    if "id" in obj:
        if not isinstance(obj["id"], (str, int)) or isinstance(obj["id"], bool):
            return f"'id' must be a string or a number, got {type(obj['id']).__name__}"
        record["id"] = str(obj["id"])
    return record


def read_text_records(path: str, skip_bad: bool = False) -> tuple[list[TextItem], int]:
    """{"text", "id"?, "text_pair"?} lines (a text_pair makes a sentence pair, for classification)."""
    records, skipped = read_jsonl(path, {"text": False}, skip_bad, optional=("text_pair",))
    return [TextItem(r["text"], r.get("id"), r.get("text_pair")) for r in records], skipped


def read_qa_records(path: str, skip_bad: bool = False) -> tuple[list[QaItem], int]:
    records, skipped = read_jsonl(path, {"context": True, "question": True}, skip_bad)
    return [QaItem(r["question"], r["context"], r.get("id")) for r in records], skipped


def check_text(what: str, value: str, where: str = "") -> None:
    """A context or question given on the command line must hold some text."""
    if not value.strip():
        raise InputError(Problem(where, "", f"the {what} is empty") if where else f"the {what} is empty")
