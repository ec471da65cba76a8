"""Hugging Face `datasets` as inputs: a directory written by `save_to_disk` (a DatasetDict or a Dataset), or a
.parquet or .arrow file.

Columns follow the Hub's conventions (COLUMNS: NER `tokens` + `ner_tags`; QA SQuAD's `id`, `title`, `question`,
`context`, `answers` {text, answer_start}; classification `text` or `sentence` + `label`, and a second text for
pairs); other names are mapped with a column mapping (`{task}_columns`, parse_columns). Integers of a ClassLabel
feature are read as its names. Each row is checked by the rules of the task's other formats (conll, squad,
classification) and its problems are located by split, row and column. The Arrow data stays memory-mapped and
only the needed columns of one batch of rows at a time become Python objects. `datasets` is an optional extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtlcli.data import classification, conll, squad
from mtlcli.data.columns import Columns, match_columns, missing_columns
from mtlcli.data.examples import ClsExample, NerExample, QaExample
from mtlcli.errors import InputError, Problem

SUFFIXES = (".parquet", ".arrow")
SAVED_MARKERS = ("dataset_dict.json", "state.json")  # what save_to_disk writes for a DatasetDict, for a Dataset
BATCH_ROWS = 1000
# the split a DatasetDict gives when none is chosen: the first of these it has
ROLE_SPLITS = {
    "train": ("train",),
    "valid": ("validation", "valid", "dev", "test"),
    "test": ("test", "validation", "valid", "dev"),
}
INSTALL = "pip install 'mtl[datasets]'"

# per task: canonical column -> accepted names, preferred first; a positional column mapping follows this order
COLUMNS: dict[str, Columns] = {
    "ner": conll.JSONL_COLUMNS,
    "qa": {
        "question": ("question",),
        "context": ("context",),
        "answers": ("answers",),
        "id": ("id",),
        "title": ("title",),
    },
    "cls": classification.COLUMNS,
}
REQUIRED = {"ner": conll.JSONL_REQUIRED, "qa": ("question", "context", "answers"), "cls": classification.REQUIRED}
# what each canonical column holds (checked against the Arrow type, _type_problem)
KINDS = {
    "tokens": "strings",
    "tags": "tags",
    "question": "text",
    "context": "text",
    "title": "text",
    "text": "text",
    "text_pair": "text",
    "id": "name",
    "label": "name",
    "answers": "answers",
}
EXPECTED = {
    "text": "strings",
    "strings": "lists of strings",
    "tags": "lists of tag names or ClassLabel integers",
    "name": "strings or integers",
    "answers": "SQuAD answers {text: [...], answer_start: [...]}",
}


@dataclass(frozen=True)
class DatasetOptions:
    """What to read of a datasets input; the two options are how the user sets split and columns (for messages)."""

    role: str = "train"  # train | valid | test: the split read when none is chosen (ROLE_SPLITS)
    split: str = ""
    columns: str = ""  # a column mapping (parse_columns)
    split_option: str = "DatasetOptions(split=...)"
    columns_option: str = "DatasetOptions(columns=...)"


PLAIN = DatasetOptions()


def is_dataset(path: str | Path) -> bool:
    """Whether the input is read as Hugging Face datasets: a directory, or a .parquet or .arrow file."""
    return Path(path).is_dir() or Path(path).suffix.lower() in SUFFIXES


def parse_columns(task: str, spec: str) -> dict[str, str]:
    """A column mapping -> {canonical column: the dataset's column}: 'words,tags' names the columns in the task's
    order (COLUMNS), 'tokens:words,tags:labels' by canonical name. Raises ValueError."""
    if not spec:
        return {}
    if task not in COLUMNS:
        raise ValueError(f"the {task} task has no dataset columns to map")
    canonical = list(COLUMNS[task])
    entries = [entry.strip() for entry in spec.split(",")]
    if not any(":" in entry for entry in entries):
        if len(entries) > len(canonical) or not all(entries):
            raise ValueError(f"expected up to {len(canonical)} column names in the order {','.join(canonical)}")
        return dict(zip(canonical, entries))
    mapping = {}
    for entry in entries:
        key, _, name = (part.strip() for part in entry.partition(":"))
        if key not in canonical or not name:
            raise ValueError(f"expected COLUMN:NAME with COLUMN one of {', '.join(canonical)}, got '{entry}'")
        mapping[key] = name
    return mapping


def read(task: str, path: str | Path, options: DatasetOptions) -> tuple[str, list, list[Problem]]:
    """(file for messages, examples, problems of the rows left out) of a datasets input."""
    if Path(path).is_dir() and not any((Path(path) / name).is_file() for name in SAVED_MARKERS):
        raise InputError(Problem(str(path), "", "a directory, not a file (nor a dataset written by save_to_disk)"))
    datasets = _require_datasets(path)
    source = _open(datasets, path, options)
    columns = _columns(task, source, options)
    names = {canonical: _class_names(datasets, source.features[name]) for canonical, name in columns.items()}
    note = "".join(f" ({c}: column '{n}')" for c, n in columns.items() if c != n)
    stem = f"{Path(path).name}:{source.split}:" if source.split else f"{Path(path).name}:"
    examples, problems, seen = [], [], {}
    for row, fields in _rows(source, columns):
        where = f"{source.split} row {row}" if source.split else f"row {row}"
        found = _decode_labels(fields, names, columns)
        if isinstance(found, dict):
            found = CONVERTERS[task](found, f"{stem}{row}", where, seen)
        if isinstance(found, str):
            problems.append(Problem(source.file, where, found + ("" if found.startswith("column ") else note)))
        else:
            examples.append(found)
    return source.file, examples, problems


# ------------------------------------------------------------------------------------------ rows to examples


def _ner_example(fields: dict, example_id: str, where: str, seen: dict) -> NerExample | str:
    tokens, tags = fields["tokens"], fields["tags"]
    return conll.record_problem(tokens, tags) or NerExample(example_id, list(tokens), conll.to_iob2(tags))


def _qa_example(fields: dict, example_id: str, where: str, seen: dict) -> QaExample | str:
    answers = fields["answers"]
    if isinstance(answers, dict):  # the Hub's {"text": [...], "answer_start": [...]}
        texts, starts = answers.get("text") or [], answers.get("answer_start") or []
        if len(texts) != len(starts):
            return f"answers.text and answers.answer_start differ in length ({len(texts)} vs {len(starts)})"
        answers = [{"text": text, "answer_start": start} for text, start in zip(texts, starts)]
    question_id = example_id if fields.get("id") in (None, "") else fields["id"]
    # the Hub's squad_v2 has no is_impossible column: empty answers are how it marks an unanswerable question
    impossible = not answers if fields.get("is_impossible") is None else fields["is_impossible"]
    record = fields | {"answers": answers, "id": question_id, "is_impossible": impossible}
    return squad.question_from_fields(record, where, seen)


def _cls_example(fields: dict, example_id: str, where: str, seen: dict) -> ClsExample | str:
    text, label, pair = fields["text"], fields["label"], fields.get("text_pair")
    return classification.record_problem(text, label, pair) or classification.example(example_id, text, label, pair)


# per task: (fields by canonical column, example id, location, ids seen so far) -> the example or what is wrong
CONVERTERS = {"ner": _ner_example, "qa": _qa_example, "cls": _cls_example}


def _decode_labels(fields: dict, names: dict[str, list[str] | None], columns: dict[str, str]) -> dict | str:
    """ClassLabel integers replaced by their names (a list of them for NER tags), or what is wrong."""
    decoded = dict(fields)
    for canonical, classes in names.items():
        value = fields[canonical]
        if classes is None or value is None:
            continue
        for number in value if isinstance(value, list) else [value]:
            if isinstance(number, int) and not 0 <= number < len(classes):
                what = (
                    f"column '{columns[canonical]}': {number} is not a class of its ClassLabel (0–{len(classes) - 1})"
                )
                return what + (" (-1: no label; drop such rows with --skip-bad)" if number == -1 else "")
        decoded[canonical] = [_name(classes, n) for n in value] if isinstance(value, list) else _name(classes, value)
    return decoded


def _name(classes: list[str], value: Any) -> Any:
    return classes[value] if isinstance(value, int) else value  # anything else is reported by the record's checks


def _class_names(datasets, feature) -> list[str] | None:
    """The names of a ClassLabel feature, or of the items of a list of them (NER tags); None for other features."""
    item = getattr(feature, "feature", feature)
    return list(item.names) if isinstance(item, datasets.ClassLabel) else None


# ------------------------------------------------------------------------------------------ sources


@dataclass
class _Source:
    file: str  # for messages
    split: str  # "" for a single table
    features: Any  # datasets.Features
    batches: Iterator  # pyarrow Tables or RecordBatches, memory-mapped where the format allows


def _require_datasets(path):
    try:
        import datasets
    except ImportError:
        raise InputError(
            Problem(str(path), "", f"reading Hugging Face datasets needs the datasets package: {INSTALL}")
        ) from None
    datasets.disable_progress_bars()  # the commands show their own progress
    return datasets


def _open(datasets, path: str | Path, options: DatasetOptions) -> _Source:
    import pyarrow as pa

    file = str(path)
    if Path(path).is_dir():
        loaded = datasets.load_from_disk(file)
        split = ""
        if isinstance(loaded, datasets.DatasetDict):
            split = _choose_split(file, list(loaded), options)
            loaded = loaded[split]
        elif options.split:
            raise InputError(
                Problem(file, "", f"a Dataset, not a DatasetDict: it has no splits (drop {options.split_option})")
            )
        return _Source(file, split, loaded.features, loaded.with_format("arrow").iter(batch_size=BATCH_ROWS))
    if options.split:
        raise InputError(Problem(file, "", f"a single table has no splits (drop {options.split_option})"))
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.ParquetFile(file)
            schema, batches = table.schema_arrow, table.iter_batches(batch_size=BATCH_ROWS)
        else:
            schema, batches = _arrow_batches(file)
        features = datasets.Features.from_arrow_schema(schema)
    except OSError as error:
        raise InputError(Problem(file, "", f"cannot read file: {error.strerror or error}")) from None
    except (pa.ArrowException, ValueError, TypeError) as error:
        raise InputError(Problem(file, "", f"not a readable {suffix[1:]} file: {error}")) from None
    return _Source(file, "", features, batches)


def _arrow_batches(file: str):
    """Schema and record batches of an Arrow IPC file (Feather v2), or of the IPC stream `datasets` writes."""
    import pyarrow as pa

    source = pa.memory_map(file)
    try:
        reader = pa.ipc.open_file(source)
        return reader.schema, (reader.get_batch(i) for i in range(reader.num_record_batches))
    except pa.ArrowInvalid:
        source.seek(0)
        reader = pa.ipc.open_stream(source)
        return reader.schema, iter(reader)


def _choose_split(file: str, splits: list[str], options: DatasetOptions) -> str:
    if options.split:
        if options.split in splits:
            return options.split
        raise InputError(Problem(file, "", f"no split '{options.split}'; its splits: {', '.join(splits)}"))
    wanted = ROLE_SPLITS[options.role]
    found = next((name for name in wanted if name in splits), None)
    if found is None:
        raise InputError(
            Problem(
                file,
                "",
                f"no {' / '.join(wanted)} split; its splits: {', '.join(splits)}; choose one with {options.split_option}",
            )
        )
    return found


def _columns(task: str, source: _Source, options: DatasetOptions) -> dict[str, str]:
    """{canonical column: the dataset's column} for the columns present, each of the right type."""
    try:
        mapping = parse_columns(task, options.columns)
    except ValueError as error:
        raise InputError(Problem(options.columns_option, options.columns, str(error))) from None
    accepted = COLUMNS[task] | {canonical: (name,) for canonical, name in mapping.items()}
    found = list(source.features)
    matched = match_columns(found, accepted)
    missing = missing_columns(matched, accepted, REQUIRED[task], found, "column")
    if missing:
        raise InputError(Problem(source.file, source.split, f"{missing}; name yours with {options.columns_option}"))
    schema = source.features.arrow_schema
    for canonical, name in matched.items():
        arrow_type = schema.field(name).type
        if not _holds(KINDS[canonical], arrow_type):
            raise InputError(
                Problem(
                    source.file,
                    source.split,
                    f"column '{name}' holds {arrow_type} values; {canonical} must be {EXPECTED[KINDS[canonical]]}",
                )
            )
    return matched


def _holds(kind: str, arrow_type) -> bool:
    import pyarrow.types as t

    def text(ty) -> bool:
        return t.is_string(ty) or t.is_large_string(ty)

    def list_of(ty, item) -> bool:
        return (t.is_list(ty) or t.is_large_list(ty)) and item(ty.value_type)

    def answers(ty, text_check, start_check) -> bool:
        fields = {field.name: field.type for field in ty} if t.is_struct(ty) else {}
        return (
            {"text", "answer_start"} <= set(fields)
            and text_check(fields["text"])
            and start_check(fields["answer_start"])
        )

    if kind == "text":
        return text(arrow_type)
    if kind == "strings":
        return list_of(arrow_type, text)
    if kind == "tags":
        return list_of(arrow_type, lambda ty: text(ty) or t.is_integer(ty))
    if kind == "name":
        return text(arrow_type) or t.is_integer(arrow_type)
    # answers: SQuAD's struct of lists, or a list of {text, answer_start} structs
    return answers(arrow_type, lambda ty: list_of(ty, text), lambda ty: list_of(ty, t.is_integer)) or list_of(
        arrow_type, lambda ty: answers(ty, text, t.is_integer)
    )


def _rows(source: _Source, columns: dict[str, str]) -> Iterator[tuple[int, dict]]:
    """(row number, {canonical column: value}) over the batches, converting one batch at a time."""
    import pyarrow as pa

    row, names = 0, list(dict.fromkeys(columns.values()))
    try:
        for batch in source.batches:
            for values in batch.select(names).to_pylist():
                yield row, {canonical: values[name] for canonical, name in columns.items()}
                row += 1
    except (OSError, pa.ArrowException) as error:
        raise InputError(Problem(source.file, f"row {row}", f"cannot read the data: {error}")) from None
