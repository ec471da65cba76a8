"""Hugging Face datasets as inputs: each kind (save_to_disk DatasetDict and Dataset, .parquet, .arrow) reads as the
same examples as the equivalent CoNLL / SQuAD / CSV file of the bundled demo data; ClassLabel names, splits,
column mappings, and bad columns or rows as one-line errors naming file, column and row."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

datasets = pytest.importorskip("datasets")

from mtlcli.data.hf_data import DatasetOptions  # noqa: E402
from mtlcli.data.readers import read_cls, read_ner, read_qa  # noqa: E402
from mtlcli.errors import InputError  # noqa: E402
from mtlcli.task_data import data_path  # noqa: E402

NER_FILES = {"train": "@demo/wikigold_train.conll", "validation": "@demo/wikigold_valid.conll"}
QA_FILES = {"train": "@demo/squad_train.json", "validation": "@demo/squad_valid.json"}


def ner_dataset(path: str, class_labels: bool = True):
    """A split as the Hub's conll2003 holds it: tokens, and ner_tags as ClassLabel integers (or as strings)."""
    examples = read_ner(data_path(path)).examples
    names = sorted({tag for ex in examples for tag in ex.tags})
    tags = datasets.ClassLabel(names=names) if class_labels else datasets.Value("string")
    features = datasets.Features({"tokens": datasets.List(datasets.Value("string")), "ner_tags": datasets.List(tags)})
    rows = {
        "tokens": [ex.tokens for ex in examples],
        "ner_tags": [[names.index(t) if class_labels else t for t in ex.tags] for ex in examples],
    }
    return datasets.Dataset.from_dict(rows, features=features)


def squad_dataset(path: str):
    """A split in the Hub's squad schema, straight from the SQuAD JSON (the types as datasets infers them)."""
    rows = [
        {
            "id": qa["id"],
            "title": article["title"],
            "context": paragraph["context"],
            "question": qa["question"],
            "answers": {
                "text": [a["text"] for a in qa["answers"]],
                "answer_start": [a["answer_start"] for a in qa["answers"]],
            },
        }
        for article in json.loads(Path(data_path(path)).read_text(encoding="utf-8"))["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    return datasets.Dataset.from_list(rows)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """The demo data as DatasetDicts written by save_to_disk, and one split as .parquet and .arrow files."""
    root = tmp_path_factory.mktemp("hf")
    ner = datasets.DatasetDict({split: ner_dataset(path) for split, path in NER_FILES.items()})
    qa = datasets.DatasetDict({split: squad_dataset(path) for split, path in QA_FILES.items()})
    ner.save_to_disk(root / "ner")
    qa.save_to_disk(root / "qa")
    ner["validation"].save_to_disk(root / "ner-valid-dataset")
    ner["validation"].to_parquet(root / "ner_valid.parquet")
    qa["validation"].to_parquet(root / "qa_valid.parquet")
    arrow = next((root / "ner" / "validation").glob("*.arrow"))
    return {"ner": root / "ner", "qa": root / "qa", "root": root, "ner_arrow": arrow}


def sentences(examples):
    return [(ex.tokens, ex.tags) for ex in examples]


def questions(examples):
    return [(ex.id, ex.title, ex.question, ex.context, ex.answers) for ex in examples]


def test_every_ner_input_kind_reads_as_the_conll_file(saved):
    train, valid = (read_ner(data_path(NER_FILES[split])).examples for split in ("train", "validation"))
    assert sentences(read_ner(saved["ner"]).examples) == sentences(train)  # the train split by default
    assert sentences(read_ner(saved["ner"], options=DatasetOptions("valid")).examples) == sentences(valid)
    for single in (saved["root"] / "ner-valid-dataset", saved["root"] / "ner_valid.parquet", saved["ner_arrow"]):
        assert sentences(read_ner(single).examples) == sentences(valid), single
    first = read_ner(saved["ner"], options=DatasetOptions("valid")).examples[0]
    assert first.id == "ner:validation:0" and first.tags[0] in ("O", "B-PER", "B-ORG", "B-LOC", "B-MISC")


def test_string_tags_and_a_column_mapping(tmp_path):
    table = ner_dataset(NER_FILES["validation"], class_labels=False).rename_columns(
        {"tokens": "words", "ner_tags": "labels"}
    )
    table.to_parquet(tmp_path / "renamed.parquet")
    expected = sentences(read_ner(data_path(NER_FILES["validation"])).examples)
    for mapping in ("words,labels", "tags:labels,tokens:words"):
        got = read_ner(tmp_path / "renamed.parquet", options=DatasetOptions(columns=mapping)).examples
        assert sentences(got) == expected
    message = str(pytest.raises(InputError, read_ner, tmp_path / "renamed.parquet").value)
    assert "missing column tokens (one of: tokens)" in message and "found columns: words, labels" in message


def test_squad_schema_reads_as_the_squad_file(saved):
    for split, role in (("train", "train"), ("validation", "valid")):
        expected = questions(read_qa(data_path(QA_FILES[split])).examples)
        assert questions(read_qa(saved["qa"], options=DatasetOptions(role)).examples) == expected
    valid = questions(read_qa(data_path(QA_FILES["validation"])).examples)
    assert questions(read_qa(saved["root"] / "qa_valid.parquet").examples) == valid
    # the test role (mtl evaluate) falls back to validation when there is no test split
    assert questions(read_qa(saved["qa"], options=DatasetOptions("test")).examples) == valid


def test_answers_as_a_list_of_structs(tmp_path):
    rows = [{"question": "Who?", "context": "Ann ran.", "answers": [{"text": "Ann", "answer_start": 0}]}]
    datasets.Dataset.from_list(rows).to_parquet(tmp_path / "qa.parquet")
    (example,) = read_qa(tmp_path / "qa.parquet").examples
    assert example.id == "qa.parquet:0" and example.answers[0].text == "Ann" and example.answers[0].start == 0


def test_squad_v2_rows_with_empty_answers_are_unanswerable(tmp_path):
    """The Hub's squad_v2 schema: no is_impossible column, an unanswerable question has empty answers."""
    context = "Ann ran to Paris."
    qas = [("a", "Who ran?", ["Ann"], [0]), ("b", "Who swam?", [], []), ("c", "Where to?", ["Paris"], [11])]
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "context": datasets.Value("string"),
            "question": datasets.Value("string"),
            "answers": {
                "text": datasets.List(datasets.Value("string")),
                "answer_start": datasets.List(datasets.Value("int32")),
            },
        }
    )
    rows = [
        {"id": i, "context": context, "question": q, "answers": {"text": t, "answer_start": s}} for i, q, t, s in qas
    ]
    datasets.Dataset.from_list(rows, features=features).to_parquet(tmp_path / "v2.parquet")
    squad = {
        "version": "v2.0",
        "data": [
            {
                "title": "",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": i,
                                "question": q,
                                "answers": [{"text": a, "answer_start": s} for a, s in zip(t, starts)],
                                "is_impossible": not t,
                            }
                            for i, q, t, starts in qas
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "v2.json").write_text(json.dumps(squad), encoding="utf-8")
    examples = read_qa(tmp_path / "v2.parquet").examples
    assert [ex.impossible for ex in examples] == [False, True, False]
    assert examples == read_qa(tmp_path / "v2.json").examples


def cls_rows():
    return [("I lost my card", "card"), ("Where is my money?", "transfer"), ("My card is blocked", "card")]


def test_classification_with_class_label_names_reads_as_the_csv(tmp_path):
    csv = tmp_path / "cls.csv"
    csv.write_text("sentence,label\n" + "".join(f"{t},{label}\n" for t, label in cls_rows()), encoding="utf-8")
    names = ["card", "transfer"]
    features = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    rows = {"sentence": [t for t, _ in cls_rows()], "label": [names.index(label) for _, label in cls_rows()]}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=features)}).save_to_disk(tmp_path / "d")
    from_csv, from_dataset = read_cls(csv).examples, read_cls(tmp_path / "d").examples
    assert [(e.text, e.label, e.text_pair) for e in from_dataset] == [(e.text, e.label, e.text_pair) for e in from_csv]
    assert {e.label for e in from_dataset} == {"card", "transfer"}  # names, not 0 and 1


def test_sentence_pairs_in_csv_jsonl_and_datasets(tmp_path):
    pairs = [
        ("A man plays a guitar.", "Someone makes music.", "entailment"),
        ("A dog runs.", "A cat sleeps.", "neutral"),
    ]
    (tmp_path / "nli.csv").write_text(
        "premise,hypothesis,label\n" + "".join(f"{p},{h},{label}\n" for p, h, label in pairs), encoding="utf-8"
    )
    (tmp_path / "nli.jsonl").write_text(
        "".join(json.dumps({"sentence1": p, "sentence2": h, "label": label}) + "\n" for p, h, label in pairs)
    )
    names = ["entailment", "neutral", "contradiction"]
    features = datasets.Features(
        {
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            "label": datasets.ClassLabel(names=names),
        }
    )
    table = {"premise": [p for p, _, _ in pairs], "hypothesis": [h for _, h, _ in pairs], "label": [0, 1]}
    datasets.Dataset.from_dict(table, features=features).to_parquet(tmp_path / "nli.parquet")
    for name in ("nli.csv", "nli.jsonl", "nli.parquet"):
        got = [(e.text, e.text_pair, e.label) for e in read_cls(tmp_path / name).examples]
        assert got == pairs, name
    (tmp_path / "empty_pair.csv").write_text("premise,hypothesis,label\nA dog runs.,,neutral\n", encoding="utf-8")
    assert str(pytest.raises(InputError, read_cls, tmp_path / "empty_pair.csv").value).endswith(":2: empty text_pair")


def test_splits_are_chosen_by_role_or_by_name(saved):
    assert len(read_ner(saved["ner"], options=DatasetOptions("train", "validation")).examples) == 314
    message = str(pytest.raises(InputError, read_ner, saved["ner"], options=DatasetOptions("train", "dev")).value)
    assert message.endswith("no split 'dev'; its splits: train, validation")
    only_train = saved["root"] / "only-train"
    datasets.DatasetDict({"train": ner_dataset(NER_FILES["validation"])}).save_to_disk(only_train)
    options = DatasetOptions("valid", split_option="--set ner_valid_split=NAME")
    message = str(pytest.raises(InputError, read_ner, only_train, options=options).value)
    assert "no validation / valid / dev / test split; its splits: train" in message and "ner_valid_split" in message
    for single in (saved["root"] / "ner_valid.parquet", saved["root"] / "ner-valid-dataset"):
        message = str(pytest.raises(InputError, read_ner, single, options=DatasetOptions("train", "test")).value)
        assert "has no splits" in message
    plain = data_path(NER_FILES["train"])
    message = str(pytest.raises(InputError, read_ner, plain, options=DatasetOptions(split="x")).value)
    assert "only a Hugging Face DatasetDict has splits" in message


def test_bad_columns_and_rows_name_file_column_and_row(tmp_path):
    def error(rows, features=None, skip_bad=False, reader=read_ner):
        path = tmp_path / "bad.parquet"
        datasets.Dataset.from_list(rows, features=features).to_parquet(path)
        with pytest.raises(InputError) as caught:
            reader(path, skip_bad=skip_bad)
        return str(caught.value).removeprefix(str(path))

    assert error([{"tokens": "Ann ran", "ner_tags": ["O"]}]) == (
        ": column 'tokens' holds string values; tokens must be lists of strings"
    )
    assert error([{"text": "hi", "label": 1.5}], reader=read_cls) == (
        ": column 'label' holds double values; label must be strings or integers"
    )
    tags = datasets.Features(
        {"tokens": datasets.List(datasets.Value("string")), "ner_tags": datasets.List(datasets.ClassLabel(names=["O"]))}
    )
    rows = [{"tokens": ["Ann"], "ner_tags": [0]}, {"tokens": ["Ann", "ran"], "ner_tags": [0]}]
    assert error(rows, tags) == ":row 1: tokens and tags differ in length (2 vs 1) (tags: column 'ner_tags')"
    label = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b"])})
    message = error([{"text": "hi", "label": -1}], label, reader=read_cls)
    assert message.startswith(":row 0: column 'label': -1 is not a class of its ClassLabel (0–1) (-1: no label")
    assert "answer 'Bob' not found in context" in error(
        [{"question": "Who?", "context": "Ann ran.", "answers": {"text": ["Bob"], "answer_start": [0]}}],
        reader=read_qa,
    )


def test_skip_bad_drops_the_bad_rows(tmp_path):
    label = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b"])})
    rows = [{"text": "good", "label": 0}, {"text": "unlabelled", "label": -1}, {"text": "fine", "label": 1}]
    datasets.Dataset.from_list(rows, features=label).to_parquet(tmp_path / "c.parquet")
    result = read_cls(tmp_path / "c.parquet", skip_bad=True)
    assert [e.label for e in result.examples] == ["a", "b"] and [p.where for p in result.skipped] == ["row 1"]


def test_without_the_datasets_package_the_message_names_the_extra(saved, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets now raises ImportError
    message = str(pytest.raises(InputError, read_ner, saved["ner"]).value)
    assert "needs the datasets package: pip install 'mtl[datasets]'" in message


def test_a_bad_column_mapping_is_a_config_error():
    from mtlcli.config import resolve

    with pytest.raises(InputError, match="ner_columns"):
        resolve([], ["ner_train=x", "ner_columns=a,b,c"])
    with pytest.raises(InputError, match="COLUMN one of tokens, tags"):
        resolve([], ["ner_train=x", "ner_columns=words:tokens"])


def test_training_from_datasetdicts_equals_training_from_the_files(backbone_dir, tmp_path, ner_file, qa_file):
    """The demo's parity (benchmarks/datasets_parity.py) in small: the same seed gives the same metrics."""
    from test_training import tiny_config

    from mtlcli.config import resolve
    from mtlcli.training.trainer import train

    datasets.DatasetDict({"train": ner_dataset(str(ner_file)), "validation": ner_dataset(str(ner_file))}).save_to_disk(
        tmp_path / "ner"
    )
    datasets.DatasetDict(
        {"train": squad_dataset(str(qa_file)), "validation": squad_dataset(str(qa_file))}
    ).save_to_disk(tmp_path / "qa")
    runs = {}
    for name, ner, qa in (("files", ner_file, qa_file), ("datasets", tmp_path / "ner", tmp_path / "qa")):
        settings = tiny_config(backbone_dir, tmp_path / name, ner_train=ner, ner_valid=ner, qa_train=qa, qa_valid=qa)
        runs[name] = train(resolve([], settings + ["epochs=2"])).history
    for key in ("train_loss", "valid"):
        assert [epoch[key] for epoch in runs["datasets"]] == [epoch[key] for epoch in runs["files"]]
    assert runs["files"][-1]["valid"]["ner"]["token_accuracy"] > 0  # scored examples, not two empty results


def test_evaluate_scores_a_datasetdict_split_as_the_file(backbone_dir, tmp_path, ner_file):
    from test_export import tiny_model_dir
    from typer.testing import CliRunner

    from mtlcli.cli.main import app

    tiny_model_dir("bert", backbone_dir, tmp_path / "model", tasks=("ner",))
    renamed = ner_dataset(str(ner_file)).rename_column("tokens", "words")
    datasets.DatasetDict({"train": renamed.select([0]), "validation": renamed}).save_to_disk(tmp_path / "d")

    def evaluate(*args):
        result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "model"), "--json", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["ner"]

    from_file = evaluate("--ner", str(ner_file))
    from_dataset = evaluate("--ner", str(tmp_path / "d"), "--split", "validation", "--columns", "ner=words")
    assert {k: v for k, v in from_dataset.items() if k != "file"} == {k: v for k, v in from_file.items() if k != "file"}
    assert from_dataset["examples"] == len(renamed)
    # without --split the validation split is scored (there is no test split); without --columns, no tokens
    refused = CliRunner().invoke(app, ["evaluate", str(tmp_path / "model"), "--ner", str(tmp_path / "d")])
    assert refused.exit_code == 2 and "d:validation: missing column tokens" in refused.output
    assert "--columns ner=" in refused.output


def test_unreadable_files_are_one_line_errors(tmp_path):
    (tmp_path / "junk.parquet").write_text("hello")
    (tmp_path / "junk.arrow").write_text("hello")
    assert "not a readable parquet file" in str(pytest.raises(InputError, read_cls, tmp_path / "junk.parquet").value)
    assert "not a readable arrow file" in str(pytest.raises(InputError, read_cls, tmp_path / "junk.arrow").value)
    assert "cannot read file" in str(pytest.raises(InputError, read_qa, tmp_path / "missing.parquet").value)
