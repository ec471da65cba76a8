"""`mtl export --format hf`: each task a Hugging Face model that loads without missing keys and computes mtl's logits."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import LABELS, tiny_model_dir
from typer.testing import CliRunner

from mtlcli.cli.main import app


@pytest.mark.parametrize("kind, segments", [("bert", True), ("bert", False), ("distilbert", False), ("roberta", False)])
def test_hf_export_round_trip_for_each_task_and_backbone_type(kind, segments, backbone_dir, tmp_path):
    from transformers import (
        AutoModelForQuestionAnswering,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )

    model, tokenizer = tiny_model_dir(kind, backbone_dir, tmp_path / "model", segments=segments)
    result = CliRunner().invoke(
        app, ["export", str(tmp_path / "model"), "--format", "hf", "--task", "all", "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    batch = tokenizer(
        ["Paris is in France", "Steve Jobs hired Larry Page in California today"], padding=True, return_tensors="pt"
    )
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        ner, info = AutoModelForTokenClassification.from_pretrained(tmp_path / "out" / "ner", output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"]
        assert ner.config.id2label == dict(enumerate(LABELS)) and ner.config.architectures[0].endswith(
            "ForTokenClassification"
        )
        ours = model("ner", **inputs)["logits"]
        assert torch.allclose(ner(**inputs).logits, ours, atol=1e-5)

        cls, info = AutoModelForSequenceClassification.from_pretrained(
            tmp_path / "out" / "cls", output_loading_info=True
        )
        assert not info["missing_keys"] and not info["unexpected_keys"]
        assert torch.allclose(cls(**inputs).logits, model("cls", **inputs)["logits"], atol=1e-5)

        # question + context as a pair, as standard use passes it: with the tokenizer's segment ids on BERT
        # (RoBERTa's and DistilBERT's own tokenizers give none), whether or not mtl trained with them
        pair = tokenizer(
            ["Who founded Apple?", "Where is Paris?"],
            ["Steve Jobs founded Apple.", "Paris is in France"],
            padding=True,
            return_tensors="pt",
        )
        theirs_in = {k: v for k, v in pair.items() if k != "token_type_ids" or kind == "bert"}
        ours_in = {k: v for k, v in pair.items() if k != "token_type_ids" or model.spec.segment_ids}
        assert pair["token_type_ids"].max() == 1 and ("token_type_ids" in ours_in) == (kind == "bert" and segments)
        qa, info = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "out" / "qa", output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"]
        theirs, ours = qa(**theirs_in), model("qa", **ours_in)
        real = pair["attention_mask"].bool()  # mtl masks padding to -1e4; the logits of real tokens are equal
        assert torch.allclose(theirs.start_logits[real], ours["start_logits"][real], atol=1e-5)
        assert torch.allclose(theirs.end_logits[real], ours["end_logits"][real], atol=1e-5)
    assert AutoTokenizer.from_pretrained(tmp_path / "out" / "ner").vocab == tokenizer.vocab
    card = (tmp_path / "out" / "ner" / "README.md").read_text()
    assert "B-LOC" in card and 'pipeline("token-classification"' in card


def test_bad_exports_are_one_line_errors_and_leave_nothing(backbone_dir, tmp_path):
    tiny_model_dir("bert", backbone_dir, tmp_path / "model", tasks=("ner", "cls"), old_cls_head=True)
    runner = CliRunner()

    def export(*args):
        return runner.invoke(app, ["export", str(tmp_path / "model"), "-o", str(tmp_path / "out"), *args])

    refused = export("--task", "cls")
    assert refused.exit_code == 2 and "cannot export cls" in refused.output and "pooler" in refused.output
    assert len(refused.output.strip().splitlines()) <= 3  # one message (Rich may wrap it)
    missing = export("--task", "qa")
    assert missing.exit_code == 2 and "has no QA head" in missing.output
    not_a_model = runner.invoke(app, ["export", str(tmp_path), "-o", str(tmp_path / "out")])
    assert not_a_model.exit_code == 2 and "config.json missing" in not_a_model.output
    assert not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    busy = export("--task", "ner")
    assert busy.exit_code == 2 and "not empty" in busy.output and (tmp_path / "out" / "keep.txt").exists()
    from mtlcli.inference.predictor import Predictor

    # the model of the old classification shape still loads and predicts
    assert list(Predictor(tmp_path / "model", device="cpu").cls(["Paris is in France"])[0]) in (["a", "b"], ["b", "a"])
    done = export("--task", "all", "--overwrite")
    assert done.exit_code == 0 and "cls: not exported" in done.output
    assert len(json.loads((tmp_path / "out" / "ner" / "config.json").read_text())["label2id"]) == len(LABELS)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ner"]


@pytest.mark.parametrize("segments", [True, False])
def test_hf_export_of_a_pair_classifier_gives_what_mtl_predicts(segments, backbone_dir, tmp_path):
    """Sentence pairs through the export's pipeline (the tokenizer's pair encoding, its segment ids included) get
    the probabilities mtl's predictor gives the same pairs, whether or not mtl trained with segment ids (the test
    tokenizer is BERT's: it gives segment ids, which only BERT's architecture takes)."""
    from transformers import pipeline

    from mtlcli.inference.predictor import Predictor

    tiny_model_dir("bert", backbone_dir, tmp_path / "model", tasks=("cls",), segments=segments)
    result = CliRunner().invoke(app, ["export", str(tmp_path / "model"), "--task", "cls", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    texts = ["Apple was founded by Steve Jobs.", "Paris is in France", "The dog jumps."]
    pairs = ["Who founded Apple?", "Paris is the capital of France and a city", "The quick brown fox"]
    ours = Predictor(tmp_path / "model", device="cpu", precision="fp32").cls(texts, pairs)
    classifier = pipeline("text-classification", model=str(tmp_path / "out"), top_k=None, device="cpu")
    theirs = classifier([{"text": t, "text_pair": p} for t, p in zip(texts, pairs)])
    for mine, hf in zip(ours, theirs):
        assert {row["label"]: pytest.approx(mine[row["label"]], abs=1e-5) for row in hf} == {
            row["label"]: row["score"] for row in hf
        }
    singles = Predictor(tmp_path / "model", device="cpu", precision="fp32").cls(texts)
    assert any(abs(singles[i]["a"] - ours[i]["a"]) > 1e-6 for i in range(len(texts)))  # the second text counts
