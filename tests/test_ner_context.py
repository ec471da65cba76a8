"""NER document context (FLERT): windows hold neighbouring sentences of the document as context only."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_model_dir
from typer.testing import CliRunner

from mtlcli.cli.main import app
from mtlcli.data.examples import NerExample
from mtlcli.features import IGNORE
from mtlcli.tasks.ner import word_features

CONLL = """-DOCSTART- -X- O O

Apple B-ORG
hired O

Steve B-PER
Jobs I-PER

-DOCSTART- -X- O O

Paris B-LOC
is O
"""


def test_conll_sentences_know_their_document(tmp_path):
    from mtlcli.data.readers import read_ner

    path = tmp_path / "docs.conll"
    path.write_text(CONLL)
    assert [ex.document for ex in read_ner(path).examples] == [1, 1, 2]
    path.write_text("Apple B-ORG\n\nParis B-LOC\n-DOCSTART- O\n\nSeattle B-LOC\n")  # Wikigold: markers close documents
    assert [ex.document for ex in read_ner(path).examples] == [0, 0, 1]
    path.write_text("Paris B-LOC\n\nSeattle B-LOC\n")  # no markers: one document
    assert [ex.document for ex in read_ner(path).examples] == [0, 0]
    (tmp_path / "s.jsonl").write_text('{"tokens": ["Paris"], "tags": ["B-LOC"]}\n')
    assert read_ner(tmp_path / "s.jsonl").examples[0].document is None  # a JSONL sentence stands alone


SENTENCES = [  # (document, tokens)
    (1, ["Apple", "hired", "Steve", "Jobs", "."]),
    (1, ["Paris", "is", "in", "France", "."]),
    (1, ["Google", "was", "founded", "by", "Larry", "Page"]),
    (2, ["Angela", "Merkel", "visited", "Washington"]),
    (2, ["Microsoft", "is", "near", "Seattle"]),
]
LABELS = {"O": 0}


def examples(documents=True):
    return [
        NerExample(f"s{i}", tokens, ["O"] * len(tokens), doc if documents else None)
        for i, (doc, tokens) in enumerate(SENTENCES)
    ]


@pytest.fixture(scope="module")
def tokenizer(backbone_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(backbone_dir))


def pieces(tokenizer, tokens):
    return tokenizer(tokens, is_split_into_words=True, add_special_tokens=False)["input_ids"]


def check_each_word_once(features, sentences):
    for index, (_, tokens) in enumerate(sentences):
        rows = [r for r, e in enumerate(features.example) if e == index]
        owned = sorted(w for r in rows for w in features.word_index[r] if w >= 0)
        assert owned == list(range(len(tokens)))  # every word predicted once, and only its own sentence's words
        for r in rows:
            labelled = [i for i, label in enumerate(features.labels[r]) if label != IGNORE]
            assert labelled == [i for i, w in enumerate(features.word_index[r]) if w >= 0]  # loss on them only


def test_windows_hold_the_neighbours_of_the_same_document_as_context_only(tokenizer):
    features = word_features(examples(), tokenizer, LABELS, max_length=64, context=4)
    assert len(features) == len(SENTENCES)
    check_each_word_once(features, SENTENCES)
    ids = [pieces(tokenizer, tokens) for _, tokens in SENTENCES]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    # the middle sentence: the last 4 sub-tokens of the one before, the first 4 of the one after
    assert features.input_ids[1] == [cls, *ids[0][-4:], *ids[1], *ids[2][:4], sep]
    # a document's first and last sentences get no context from another document
    assert features.input_ids[2] == [cls, *ids[1][-4:], *ids[2], sep]
    assert features.input_ids[3] == [cls, *ids[3], *ids[4][:4], sep]
    # documents of None: no context at all, exactly the windows without it
    alone = word_features(examples(documents=False), tokenizer, LABELS, max_length=64, context=4)
    assert alone.input_ids == word_features(examples(), tokenizer, LABELS, max_length=64).input_ids
    assert all(len(row) == len(pieces(tokenizer, tokens)) + 2 for row, (_, tokens) in zip(alone.input_ids, SENTENCES))


def test_context_fits_the_window_and_never_splits_a_sentence_differently(tokenizer):
    ids = [pieces(tokenizer, tokens) for _, tokens in SENTENCES]
    tight = len(ids[1]) + 2 + 3  # room for 3 context sub-tokens beside the middle sentence
    features = word_features(examples(), tokenizer, LABELS, max_length=tight, context=4)
    row = features.input_ids[features.example.index(1)]
    assert len(row) == tight and row[1:3] == ids[0][-2:] and row[-2:-1] == ids[2][:1]  # split 2 + 1
    check_each_word_once(features, SENTENCES)
    # a sentence longer than a window: context (where its windows leave room) before its first window and after its
    # last only; the windows inside it have the sentence's own words around them
    long_doc = [NerExample("a", ["Paris"], ["O"], 7), NerExample("b", ["Seattle"] * 30, ["O"] * 30, 7)]
    long_doc.append(NerExample("c", ["France"], ["O"], 7))
    features = word_features(long_doc, tokenizer, LABELS, max_length=24, context=3)
    rows = [r for r, e in enumerate(features.example) if e == 1]
    paris, france = pieces(tokenizer, ["Paris"]), pieces(tokenizer, ["France"])
    assert len(rows) >= 2 and all(len(features.input_ids[r]) <= 24 for r in rows)
    assert features.input_ids[rows[-1]][-1 - len(france) : -1] == france
    assert all(france[0] not in features.input_ids[r] for r in rows[:-1])
    assert all(paris[0] not in features.input_ids[r] for r in rows[1:])
    check_each_word_once(features, [(7, ex.tokens) for ex in long_doc])


@pytest.fixture(scope="module")
def context_model(backbone_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("context") / "model"
    tiny_model_dir("bert", backbone_dir, directory, tasks=("ner",))
    spec = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps(spec | {"ner_context": 8}))
    return directory


def test_predict_ner_context_lines(context_model, tmp_path):
    from mtlcli.inference.predictor import Predictor
    from mtlcli.inputs import TextItem

    lines = ["Apple hired Steve Jobs.", "Paris is in France.", "", "Angela Merkel visited Washington."]
    predictor = Predictor(context_model, device="cpu", precision="fp32")
    alone = predictor.predict("ner", [TextItem(t) for t in lines])
    together = predictor.predict("ner", [TextItem(t) for t in lines], context_lines=True)
    for a, b in zip(alone, together):
        assert a.words == b.words and len(b.tags) == len(b.words)  # each line's own words, each once
    assert together[1].scores != alone[1].scores  # its neighbours changed what the model saw
    assert together[3].scores == pytest.approx(alone[3].scores, abs=1e-6)  # after a blank line: a new document, alone
    file = tmp_path / "lines.txt"
    file.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(
        app, ["predict-ner", str(context_model), "--file", str(file), "--context-lines", "--format", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == lines


def test_context_lines_needs_a_model_trained_with_context(backbone_dir, tmp_path):
    tiny_model_dir("bert", backbone_dir, tmp_path / "plain", tasks=("ner",))
    result = CliRunner().invoke(app, ["predict-ner", str(tmp_path / "plain"), "--context-lines", "Paris is big"])
    assert result.exit_code == 2 and "ner_context=N" in result.output


def test_a_run_with_context_keeps_it_for_validation_and_evaluate(backbone_dir, tmp_path):
    from mtlcli.config import resolve
    from mtlcli.evaluate_run import evaluate_model
    from mtlcli.training.trainer import train

    data = tmp_path / "docs.conll"
    data.write_text(CONLL * 3)
    settings = [f'backbone="{backbone_dir}"', f'output_dir="{tmp_path / "run"}"', 'cache_dir=""', "precision=fp32"]
    settings += ["epochs=1", "batch_size=2", "max_length=32", f'ner_train="{data}"', f'ner_valid="{data}"']
    result = train(resolve([], settings + ["ner_context=6"]))
    assert json.loads((tmp_path / "run" / "last" / "config.json").read_text())["ner_context"] == 6
    report = evaluate_model(tmp_path / "run" / "last", {"ner": str(data)})
    assert report.metrics["ner"]["f1"] == pytest.approx(result.history[-1]["valid"]["ner"]["f1"])
    assert report.metrics["ner"]["examples"] == 9
