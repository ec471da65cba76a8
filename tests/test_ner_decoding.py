"""BIO-constrained NER decoding: a Viterbi search that never emits an I-X after O or another type."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tiny_model_dir
from hypothesis import given, settings
from hypothesis import strategies as st
from test_augment import valid_iob2 as legal
from typer.testing import CliRunner

from mtlcli.cli.main import app
from mtlcli.tasks.bio import bio_transitions, viterbi

TAGS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def test_transitions_forbid_only_an_i_after_o_or_another_type():
    allowed = bio_transitions(TAGS)
    start = len(TAGS)
    assert not allowed[start, TAGS.index("I-LOC")] and allowed[start, TAGS.index("B-LOC")]
    assert not allowed[TAGS.index("O"), TAGS.index("I-PER")]
    assert not allowed[TAGS.index("B-LOC"), TAGS.index("I-PER")]
    assert not allowed[TAGS.index("I-LOC"), TAGS.index("I-PER")]
    assert allowed[TAGS.index("B-PER"), TAGS.index("I-PER")] and allowed[TAGS.index("I-PER"), TAGS.index("I-PER")]
    assert allowed[: start + 1, TAGS.index("O")].all() and allowed[: start + 1, TAGS.index("B-PER")].all()


word_scores = st.integers(1, 12).flatmap(
    lambda n: st.lists(st.lists(st.floats(-8, 8), min_size=len(TAGS), max_size=len(TAGS)), min_size=n, max_size=n)
)


@settings(max_examples=300, deadline=None)
@given(word_scores)
def test_viterbi_is_always_legal_and_equals_argmax_when_that_is_legal(logits):
    logits = np.asarray(logits, dtype=np.float32)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    path = [TAGS[i] for i in viterbi(log_probs, bio_transitions(TAGS))]
    assert len(path) == len(logits) and legal(path)
    argmax = [TAGS[i] for i in log_probs.argmax(-1)]
    if legal(argmax):
        assert path == argmax
    # no legal sequence scores higher (brute force over every sequence of the short ones)
    if len(logits) <= 4:
        import itertools

        best = max(
            sum(log_probs[t, TAGS.index(tag)] for t, tag in enumerate(tags))
            for tags in itertools.product(TAGS, repeat=len(logits))
            if legal(list(tags))
        )
        assert sum(log_probs[t, TAGS.index(tag)] for t, tag in enumerate(path)) == pytest.approx(best, abs=1e-4)


def test_viterbi_repairs_an_illegal_argmax():
    #          O     B-LOC  I-LOC  B-PER  I-PER
    scores = [[0.1, 0.01, 0.01, 0.28, 0.6], [0.1, 0.01, 0.01, 0.08, 0.8]]  # argmax: I-PER I-PER
    path = viterbi(np.log(np.asarray(scores)), bio_transitions(TAGS))
    assert [TAGS[i] for i in path] == ["B-PER", "I-PER"]


@pytest.fixture(scope="module")
def eager_i_model(backbone_dir, tmp_path_factory):
    """A tiny NER model whose head prefers I-PER everywhere (then B-PER): argmax tags are illegal."""
    import torch

    from mtlcli.model import save_model

    directory = tmp_path_factory.mktemp("bio") / "model"
    model, tokenizer = tiny_model_dir("bert", backbone_dir, directory, tasks=("ner",))
    with torch.no_grad():
        model.heads["ner"].weight.zero_()
        model.heads["ner"].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 2.0, 3.0]))
    save_model(model, tokenizer, directory)
    return directory


def test_decoding_follows_the_model_spec_and_the_override(eager_i_model, tmp_path):
    import shutil

    from mtlcli.inference.predictor import Predictor

    text = "Angela Merkel visited Washington"
    argmax = Predictor(eager_i_model, device="cpu", precision="fp32").ner([text])[0]
    assert argmax.tags == ["I-PER"] * 4
    bio = Predictor(eager_i_model, device="cpu", precision="fp32").predict("ner", [_item(text)], decoding="bio")
    assert bio[0].tags == ["B-PER", "I-PER", "I-PER", "I-PER"]
    # a model trained with ner_decoding = "bio" decodes that way without being told
    bio_dir = tmp_path / "bio-model"
    shutil.copytree(eager_i_model, bio_dir)
    config = json.loads((bio_dir / "config.json").read_text())
    (bio_dir / "config.json").write_text(json.dumps(config | {"ner_decoding": "bio"}))
    assert Predictor(bio_dir, device="cpu", precision="fp32").ner([text])[0].tags == bio[0].tags
    assert (
        Predictor(bio_dir, device="cpu", precision="fp32").predict("ner", [_item(text)], decoding="argmax")[0].tags
        == ["I-PER"] * 4
    )


def _item(text):
    from mtlcli.inputs import TextItem

    return TextItem(text)


def test_evaluate_and_predict_ner_take_the_decoding_flag(eager_i_model, tmp_path):
    data = tmp_path / "gold.conll"
    data.write_text("Angela B-PER\nMerkel I-PER\nvisited O\nWashington B-LOC\n")
    runner = CliRunner()
    results = {}
    for decoding in ("argmax", "bio"):
        result = runner.invoke(
            app, ["evaluate", str(eager_i_model), "--ner", str(data), "--ner-decoding", decoding, "--json"]
        )
        assert result.exit_code == 0, result.output
        results[decoding] = json.loads(result.stdout.strip().splitlines()[-1])["ner"]
    assert results["bio"]["decoding"] == "bio" and results["argmax"]["decoding"] == "argmax"
    # gold B-PER I-PER O B-LOC: argmax (I-PER ×4) has 1 word right, bio (B-PER I-PER I-PER I-PER) 2
    assert results["argmax"]["token_accuracy"] == pytest.approx(0.25)
    assert results["bio"]["token_accuracy"] == pytest.approx(0.5)
    result = runner.invoke(
        app, ["predict-ner", str(eager_i_model), "--decoding", "bio", "--format", "conll", "Paris is big"]
    )
    assert result.exit_code == 0, result.output
    assert [line.split()[-1] for line in result.stdout.split("\n") if line.strip()] == ["B-PER", "I-PER", "I-PER"]
    bad = runner.invoke(app, ["predict-ner", str(eager_i_model), "--decoding", "crf", "Paris"])
    assert bad.exit_code == 2
