"""Sentence-pair classification: pairs encoded as the tokenizer encodes a pair, trained, evaluated and predicted
through the CLI and the Python API, on a small made-up set whose labels only the pair decides."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import CORPUS
from typer.testing import CliRunner

from mtlcli.cli.main import app
from mtlcli.data.examples import ClsExample
from mtlcli.errors import InputError
from mtlcli.inputs import TextItem
from mtlcli.tasks.cls import text_features


def made_up_pairs() -> list[tuple[str, str, str]]:
    """Each sentence with a second text that decides its label: every first text has both labels, so a model
    that did not see the second text could not tell them apart."""
    return [(s, city, city.lower()) for s in CORPUS[:6] for city in ("Paris", "Seattle")]


def test_pairs_are_encoded_as_the_tokenizer_encodes_a_pair(backbone_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(backbone_dir))
    examples = [
        ClsExample("0", "Apple was founded by Steve Jobs.", "x", "Who founded Apple?"),
        ClsExample("1", "Paris is in France.", "y"),
        ClsExample("2", "Google was founded by Larry Page and Sergey Brin.", "x", "Brin"),
    ]
    features = text_features(examples, tokenizer, {"x": 0, "y": 1}, 64, segment_ids=True)
    for ex, ids, segments in zip(examples, features.input_ids, features.token_type_ids):
        expected = tokenizer(ex.text, ex.text_pair) if ex.text_pair else tokenizer(ex.text)
        assert ids == expected["input_ids"] and segments == expected["token_type_ids"]
    assert features.token_type_ids[0].count(1) > 0 and set(features.token_type_ids[1]) == {0}
    assert features.label == [0, 1, 0]
    without = text_features(examples, tokenizer, {}, 64, segment_ids=False)
    assert without.input_ids == features.input_ids and without.token_type_ids == []
    cut = text_features(examples[:1], tokenizer, {}, 8, segment_ids=True)
    assert len(cut.input_ids[0]) == 8 and cut.input_ids[0].count(tokenizer.sep_token_id) == 2  # both texts kept


@pytest.fixture
def pair_run(backbone_dir, tmp_path):
    """A tiny BERT trained on the made-up pairs with segment ids; returns (model dir, pairs CSV)."""
    from test_training import tiny_config

    from mtlcli.config import resolve
    from mtlcli.training.trainer import train

    path = tmp_path / "pairs.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("sentence1", "sentence2", "label"), *made_up_pairs()])
    settings = tiny_config(backbone_dir, tmp_path, cls_train=path, cls_valid=path)
    result = train(
        resolve([], settings + ["epochs=8", "batch_size=6", "lr=3e-3", "segment_ids=true", "eval_strategy=end"])
    )
    assert result.history[-1]["valid"]["cls"]["accuracy"] == 1.0, result.history[-1]["valid"]
    return tmp_path / "run" / "last", path


def test_a_pair_model_trains_evaluates_and_predicts(pair_run, tmp_path):
    import mtlcli.api as mtl

    model_dir, path = pair_run
    evaluated = CliRunner().invoke(app, ["evaluate", str(model_dir), "--cls", str(path), "--out", str(tmp_path / "e")])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["cls"]["accuracy"] == 1.0
    header = (tmp_path / "e" / "cls_predictions.csv").read_text().splitlines()[0]
    assert header == "id,text,text_pair,gold,pred,probability"

    pairs = made_up_pairs()
    lines = "".join(json.dumps({"text": a, "text_pair": b}) + "\n" for a, b, _ in pairs)
    predicted = CliRunner().invoke(
        app, ["predict-cls", str(model_dir), "--input-format", "jsonl", "--format", "jsonl"], input=lines
    )
    assert predicted.exit_code == 0, predicted.output
    records = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [(r["text"], r["text_pair"], r["label"]) for r in records] == pairs

    model = mtl.load(model_dir)
    through_api = model.classify([a for a, _, _ in pairs], text_pairs=[b for _, b, _ in pairs])
    items = [TextItem(a, text_pair=b) for a, b, _ in pairs]
    assert (
        through_api
        == model.predictor.predict("cls", items)
        == model.predictor.cls([a for a, _, _ in pairs], [b for _, b, _ in pairs])
    )
    assert [next(iter(p)) for p in through_api] == [label for _, _, label in pairs]
    with pytest.raises(InputError, match="2 texts but 1 text pairs"):
        model.classify(["a", "b"], text_pairs=["c"])


def test_a_bad_text_pair_in_jsonl_is_reported_by_line(tmp_path):
    from mtlcli.inputs import read_text_records

    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a", "text_pair": "b"}\n{"text": "c"}\n{"text": "d", "text_pair": 3}\n')
    with pytest.raises(InputError, match=r"in.jsonl:3: 'text_pair' must be a string"):
        read_text_records(str(path))
    items, skipped = read_text_records(str(path), skip_bad=True)
    assert [(i.text, i.text_pair) for i in items] == [("a", "b"), ("c", None)] and skipped == 1
