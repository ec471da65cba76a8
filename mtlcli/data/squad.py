"""QA records: official SQuAD v1.1/v2.0 JSON, and CSV/TSV/JSONL rows with context, question and answer."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mtlcli.data.examples import Answer, QaExample
from mtlcli.errors import InputError, Problem

COLUMNS = {
    "context": ("context", "Context", "passage"),
    "question": ("question", "Question"),
    "answer": ("answer", "Answer", "answer_text"),
    "answer_start": ("answer_start",),
    "id": ("id",),
}
REQUIRED = ("context", "question", "answer")


class _Bad(Exception):
    """One record is wrong; `path` is where below the record (e.g. ".answers[1]"), `what` the message."""

    def __init__(self, what: str, path: str = ""):
        super().__init__(what)
        self.path = path


def parse_squad(document: Any, file: str, problems: list[Problem]) -> list[QaExample]:
    """Questions from a parsed SQuAD document; each bad article, paragraph or question is left out
    and its problem appended, located by JSON path."""
    articles = document.get("data") if isinstance(document, dict) else None
    if not isinstance(articles, list):
        raise InputError(Problem(file, "", "not SQuAD JSON: expected an object with a 'data' list of articles"))
    examples: list[QaExample] = []
    first_seen: dict[str, str] = {}  # question id -> JSON path where it first occurred
    for a, article in enumerate(articles):
        try:
            paragraphs = _get(article, "paragraphs", list)
        except _Bad as bad:
            problems.append(Problem(file, f"data[{a}]", str(bad)))
            continue
        title = article.get("title")
        title = title if isinstance(title, str) else ""
        for p, paragraph in enumerate(paragraphs):
            try:
                context = _text(paragraph, "context")
                questions = _get(paragraph, "qas", list)
            except _Bad as bad:
                problems.append(Problem(file, f"data[{a}].paragraphs[{p}]", str(bad)))
                continue
            for q, qa in enumerate(questions):
                path = f"data[{a}].paragraphs[{p}].qas[{q}]"
                try:
                    question_id = _id(qa)
                    _check_new_id(question_id, path, first_seen)
                    example = _squad_question(qa, question_id, context, title)
                except _Bad as bad:
                    problems.append(Problem(file, f"{path}{bad.path}{_id_note(qa)}", str(bad)))
                    continue
                examples.append(example)
    return examples


def _squad_question(qa: dict[str, Any], question_id: str, context: str, title: str) -> QaExample:
    question = _text(qa, "question")
    # SQuAD 2.0: an unanswerable question (its answers are empty; plausible_answers are not gold)
    if "is_impossible" in qa and _get(qa, "is_impossible", bool):
        return QaExample(question_id, question, context, [], title, impossible=True)
    # A question without answers is allowed: it is input for prediction only.
    raw_answers = _get(qa, "answers", list) if "answers" in qa else []
    answers = []
    for n, raw in enumerate(raw_answers):
        try:
            text = _text(raw, "text")
            start = _get(raw, "answer_start", int)
            answers.append(_answer_at(context, text, start))
        except _Bad as bad:
            raise _Bad(str(bad), f".answers[{n}]") from None
    return QaExample(question_id, question, context, answers, title)


def qa_from_records(
    records: Iterable[tuple[int, dict[str, Any]]], file: str, problems: list[Problem]
) -> list[QaExample]:
    """Questions from CSV/TSV/JSONL records. Without answer_start the answer is looked up in the context."""
    name = Path(file).name
    examples: list[QaExample] = []
    first_seen: dict[str, str] = {}  # question id -> line where it first occurred
    for line, fields in records:
        try:
            question_id = _id(fields) if fields.get("id") not in (None, "") else f"{name}:{line}"
            _check_new_id(question_id, str(line), first_seen)
            example = _row_question(fields, question_id)
        except _Bad as bad:
            problems.append(Problem(file, str(line), str(bad)))
            continue
        examples.append(example)
    return examples


def _row_question(fields: dict[str, Any], question_id: str) -> QaExample:
    context = _text(fields, "context")
    question = _text(fields, "question")
    answer = fields["answer"]
    if answer in (None, ""):
        return QaExample(question_id, question, context, [])  # no answer: input for prediction only
    if not isinstance(answer, str):
        raise _Bad("answer must be a string")
    start = _start(fields.get("answer_start"))
    answers = [_locate(context, answer) if start is None else _answer_at(context, answer, start)]
    return QaExample(question_id, question, context, answers)


def _start(value: Any) -> int | None:
    """answer_start from a cell or JSON value; None when absent. Accepts "12.0", which pandas writes
    for an integer column that has empty cells."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        number = float(value) if isinstance(value, (str, float)) else None
    except ValueError:
        number = None
    if number is None or not number.is_integer():
        raise _Bad(f"answer_start must be a whole number, found '{value}'")
    return int(number)


def _answer_at(context: str, text: str, start: int) -> Answer:
    """The answer at the given offset. A wrong offset is reported, never silently fixed."""
    if start >= 0 and context.startswith(text, start):
        return Answer(text, start)
    found = context.find(text)
    if found >= 0:
        raise _Bad(f"answer '{text}' not at answer_start {start} (it occurs at {found})")
    raise _Bad(f"answer '{text}' not found in context")


def _locate(context: str, text: str) -> Answer:
    """The first occurrence of the answer, exact or else ignoring case. A regex keeps offsets right
    where lower() would change a string's length (e.g. 'İ')."""
    start = context.find(text)
    if start >= 0:
        return Answer(text, start)
    match = re.search(re.escape(text), context, re.IGNORECASE)
    if match is None:
        raise _Bad(f"answer '{text}' not found in context")
    return Answer(match.group(), match.start())  # the context's own spelling, so the offset matches


def _check_new_id(question_id: str, where: str, first_seen: dict[str, str]) -> None:
    if question_id in first_seen:
        raise _Bad(f"duplicate id '{question_id}' (first at {first_seen[question_id]})")
    first_seen[question_id] = where


def _id(record: Any) -> str:
    value = _get(record, "id", (str, int))
    if isinstance(value, bool) or not str(value).strip():
        raise _Bad("id must be a non-empty string")
    return str(value)


def _id_note(qa: Any) -> str:
    """' (id 5733be28...)' to help find a question in the file, when it has a usable id."""
    question_id = qa.get("id") if isinstance(qa, dict) else None
    return f" (id {question_id})" if isinstance(question_id, (str, int)) else ""


def _text(record: Any, key: str) -> str:
    value = _get(record, key, str)
    if not value.strip():
        raise _Bad(f"empty {key}")
    return value


_JSON_TYPES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true/false",
    type(None): "null",
}


def _get(record: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    """record[key], checked to be of the given type; raises _Bad naming what is wrong."""
    if not isinstance(record, dict):
        raise _Bad(f"expected an object, found {_JSON_TYPES.get(type(record), 'a value')}")
    if key not in record:
        raise _Bad(f"missing key '{key}'")
    value = record[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join(dict.fromkeys(_JSON_TYPES[k] for k in kinds))
        raise _Bad(f"'{key}' must be {expected}, found {_JSON_TYPES.get(type(value), 'a value')}")
    return value


def question_from_fields(fields: dict[str, Any], where: str, first_seen: dict[str, str]) -> QaExample | str:
    """A question given as SQuAD's fields (id, title, question, context, answers [{text, answer_start}]), as a
    Hugging Face datasets row holds them (mtlcli.data.hf_data): the example, or what is wrong with it, checked
    as a question of a SQuAD JSON file."""
    try:
        question_id = _id(fields)
        _check_new_id(question_id, where, first_seen)
        title = fields.get("title")
        return _squad_question(fields, question_id, _text(fields, "context"), title if isinstance(title, str) else "")
    except _Bad as bad:
        return f"{bad.path.lstrip('.')}: {bad}" if bad.path else str(bad)
