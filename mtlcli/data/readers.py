"""Read NER, QA and classification files into examples, reporting every problem by file and line.

This module does what all formats share: loading and decoding the file, turning CSV/TSV rows and JSONL
lines into records keyed by canonical column names, choosing the format by extension (a directory, .parquet
or .arrow: Hugging Face datasets, mtlcli.data.hf_data), and deciding whether problems raise or are skipped.
The format modules (conll, squad, classification) only check records.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from mtlcli.data import classification, conll, hf_data, squad
from mtlcli.data.columns import Columns, match_columns, missing_columns
from mtlcli.data.examples import ClsExample, NerExample, QaExample
from mtlcli.data.hf_data import PLAIN, DatasetOptions
from mtlcli.errors import InputError, Problem

T = TypeVar("T")
Record = tuple[int, dict[str, Any]]  # (line the record starts on, values by canonical column name)


@dataclass
class ReadResult(Generic[T]):
    examples: list[T]
    skipped: list[Problem]  # problems of records dropped because skip_bad=True


def read_ner(path: str | Path, skip_bad: bool = False, options: DatasetOptions = PLAIN) -> ReadResult[NerExample]:
    """CoNLL column files (token first, tag last), .jsonl/.json with {"tokens", "tags"} per line, or datasets."""
    if hf_data.is_dataset(path):
        return _finish(*hf_data.read("ner", path, options), skip_bad)
    file, text = _load(path, options)
    problems: list[Problem] = []
    if _extension(path) in (".jsonl", ".json"):
        records = _jsonl_records(text, file, conll.JSONL_COLUMNS, conll.JSONL_REQUIRED, problems)
        examples = conll.ner_from_records(records, file, problems)
    else:
        examples = conll.parse_conll(text, file, problems)
    return _finish(file, examples, problems, skip_bad)


def read_qa(path: str | Path, skip_bad: bool = False, options: DatasetOptions = PLAIN) -> ReadResult[QaExample]:
    """SQuAD v1.1 JSON (optionally gzipped), CSV/TSV/JSONL with context, question and answer columns, or datasets."""
    if hf_data.is_dataset(path):
        return _finish(*hf_data.read("qa", path, options), skip_bad)
    file, text = _load(path, options)
    problems: list[Problem] = []
    if _extension(path) in (".csv", ".tsv", ".jsonl"):
        records = _records(path, text, file, squad.COLUMNS, squad.REQUIRED, problems)
        examples = squad.qa_from_records(records, file, problems)
    else:
        examples = squad.parse_squad(_parse_json(text, file), file, problems)
    return _finish(file, examples, problems, skip_bad)


def read_cls(path: str | Path, skip_bad: bool = False, options: DatasetOptions = PLAIN) -> ReadResult[ClsExample]:
    """CSV/TSV or JSONL with a text (and optionally a text_pair) and a label column, or datasets."""
    if hf_data.is_dataset(path):
        return _finish(*hf_data.read("cls", path, options), skip_bad)
    file, text = _load(path, options)
    problems: list[Problem] = []
    records = _records(path, text, file, classification.COLUMNS, classification.REQUIRED, problems)
    examples = classification.cls_from_records(records, file, problems)
    return _finish(file, examples, problems, skip_bad)


def _finish(file: str, examples: list[T], problems: list[Problem], skip_bad: bool) -> ReadResult[T]:
    # Skipping drops bad records, but a file in which every record is bad is unusable, so it raises too.
    if problems and (not skip_bad or not examples):
        raise InputError(problems)
    if not examples:
        raise InputError(Problem(file, "", "no examples found"))
    return ReadResult(examples, problems)


def _extension(path: str | Path) -> str:
    """The format suffix, looking through a trailing .gz: 'dev.json.gz' -> '.json', 'dev.gz' -> ''."""
    name = Path(path).name.lower().removesuffix(".gz")
    return Path(name).suffix


def _load(path: str | Path, options: DatasetOptions) -> tuple[str, str]:
    """Return (str(path), decoded text); anything that makes the whole file unreadable raises InputError."""
    file = str(path)

    def fail(what: str, where: str = "") -> InputError:
        return InputError(Problem(file, where, what))

    if options.split:  # a column mapping is for datasets inputs too, but may be meant for the task's other file
        raise fail(f"only a Hugging Face DatasetDict has splits: drop {options.split_option}")
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise fail(f"cannot read file: {error.strerror or error}") from None
    if data.startswith(b"\x1f\x8b"):  # gzip magic, whatever the extension says
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise fail(f"not a valid gzip file: {error}") from None
    data = data.removeprefix(b"\xef\xbb\xbf")  # UTF-8 byte order mark, as written by Excel and Notepad
    if not data.strip():
        raise fail("file is empty")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise fail("file is UTF-16 encoded; save it as UTF-8")
    if b"\0" in data:
        raise fail("binary file, not text (NUL byte)", _line_of(data, data.index(b"\0")))
    try:
        return file, data.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = data[error.start]
        raise fail(
            f"not UTF-8: byte 0x{byte:02x} cannot be decoded; save the file as UTF-8", _line_of(data, error.start)
        ) from None


def _line_of(data: bytes, offset: int) -> str:
    return str(data.count(b"\n", 0, offset) + 1)


def _parse_json(text: str, file: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(
            Problem(file, str(error.lineno), f"not valid JSON: {error.msg} (column {error.colno})")
        ) from None
    except (ValueError, RecursionError) as error:  # e.g. an integer with too many digits, or absurd nesting
        raise InputError(Problem(file, "", f"not valid JSON: {error}")) from None


def _records(
    path: str | Path, text: str, file: str, columns: Columns, required: tuple[str, ...], problems: list[Problem]
) -> Iterator[Record]:
    extension = _extension(path)
    if extension in (".jsonl", ".json"):
        return _jsonl_records(text, file, columns, required, problems)
    return _table_records(text, file, "\t" if extension == ".tsv" else ",", columns, required, problems)


def _table_records(
    text: str, file: str, delimiter: str, columns: Columns, required: tuple[str, ...], problems: list[Problem]
) -> Iterator[Record]:
    """Records from CSV/TSV rows; the header must name every required column."""
    rows = _csv_rows(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), file)
    header_line, header = next(rows, (1, []))
    header = [name.strip() for name in header]
    matched = match_columns(header, columns)
    missing = missing_columns(matched, columns, required, header, "column")
    if missing:
        raise InputError(Problem(file, str(header_line), missing))
    index = {canonical: header.index(name) for canonical, name in matched.items()}
    for line, row in rows:
        # A different field count usually means an unquoted delimiter inside a text, which would shift the columns.
        if len(row) != len(header):
            problems.append(
                Problem(
                    file,
                    str(line),
                    f"row has {len(row)} field(s) but the header has {len(header)}"
                    " (quote fields that contain the delimiter)",
                )
            )
            continue
        yield line, {canonical: row[i] for canonical, i in index.items()}


def _csv_rows(reader: Any, file: str) -> Iterator[tuple[int, list[str]]]:
    """Non-blank rows with the physical line each starts on (a quoted field may span lines)."""
    line = 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield line, row
            line = reader.line_num + 1
    except csv.Error as error:  # e.g. a field over the csv module's size limit: the rest cannot be trusted
        raise InputError(Problem(file, str(line), f"cannot parse as CSV: {error} (an unclosed quote?)")) from None


def _jsonl_records(
    text: str, file: str, columns: Columns, required: tuple[str, ...], problems: list[Problem]
) -> Iterator[Record]:
    """Records from one JSON object per line. The first object acts as the header: if it lacks a
    required key the whole file is taken to use other names, so that is a file-level error."""
    first = True
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(Problem(file, str(number), f"not valid JSON: {error.msg} (column {error.colno})"))
            continue
        except (ValueError, RecursionError) as error:
            problems.append(Problem(file, str(number), f"not valid JSON: {error}"))
            continue
        if not isinstance(value, dict):
            problems.append(Problem(file, str(number), "expected a JSON object {...} on each line"))
            continue
        keys = list(value)
        matched = match_columns(keys, columns)
        missing = missing_columns(matched, columns, required, keys, "key")
        if missing and first:
            raise InputError(Problem(file, str(number), missing))
        first = False
        if missing:
            problems.append(Problem(file, str(number), missing))
            continue
        yield number, {canonical: value[name] for canonical, name in matched.items()}
