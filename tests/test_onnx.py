"""`mtl export --format onnx`: one graph of the encoder and every head that computes what PyTorch computes, on any
batch and length; int8 weights that stay close; the ONNX Runtime backend; the message when the extra is missing."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import tiny_model_dir

from mtlcli.errors import InputError

OUTPUTS = ["ner.logits", "qa.start_logits", "qa.end_logits", "cls.logits"]


@pytest.fixture(scope="module")
def exported(backbone_dir, tmp_path_factory):
    """A tiny BERT with NER, QA and classification heads, and its fp32 ONNX export (made once: exports take seconds)."""
    from mtlcli.export.onnx import export_onnx

    root = tmp_path_factory.mktemp("onnx")
    model, tokenizer = tiny_model_dir("bert", backbone_dir, root / "model", tasks=("ner", "qa", "cls"))
    (root / "fp32").mkdir()
    report = export_onnx(root / "model", root / "fp32")
    return model, tokenizer, root, report


def torch_run(model, task, feeds: dict) -> dict:
    with torch.inference_mode():
        out = model(task, **{name: torch.from_numpy(value) for name, value in feeds.items()})
    return {name: value.float().numpy() for name, value in out.items()}


def random_feeds(model, batch: int, length: int, seed: int) -> dict:
    """Random ids, the rows right-padded to lengths from 1 to `length` (the first row full)."""
    rng = np.random.default_rng(seed)
    lengths = np.array([length] + list(rng.integers(1, length + 1, size=batch - 1)))
    mask = (np.arange(length) < lengths[:, None]).astype(np.int64)
    ids = np.where(mask == 1, rng.integers(5, model.encoder.config.vocab_size, size=(batch, length)), 0)
    feeds = {"input_ids": ids.astype(np.int64), "attention_mask": mask}
    if model.spec.segment_ids:
        feeds["token_type_ids"] = ((np.arange(length) >= lengths[:, None] // 2) & (mask == 1)).astype(np.int64)
    return feeds


def test_one_graph_of_every_head_matches_pytorch_on_a_padded_batch(exported):
    from transformers import AutoTokenizer

    from mtlcli.inference.batching import exact_batches
    from mtlcli.inference.onnx_model import OnnxModel, is_onnx_export
    from mtlcli.spec import read_spec

    model, tokenizer, root, report = exported
    out = root / "fp32"
    assert report["outputs"] == OUTPUTS and report["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert report["exporter"] in ("dynamo", "torchscript") and report["quantized"] is None and report["opset"] >= 17
    assert max(report["max_abs_diff"].values()) <= 1e-4
    if report["optimized"]:  # onnxruntime's fusions applied, and the fused graph still matched
        assert report["fused"].get("SkipLayerNormalization", 0) + report["fused"].get("LayerNormalization", 0) > 0
    config = json.loads((out / "config.json").read_text())
    assert config["format"] == "onnx" and config["onnx"] == report and config["tasks"] == ["ner", "qa", "cls"]
    assert is_onnx_export(out) and not is_onnx_export(root / "model")
    assert read_spec(out).labels == model.spec.labels
    assert AutoTokenizer.from_pretrained(out).vocab == tokenizer.vocab

    onnx_model = OnnxModel(out, threads=1)
    assert onnx_model.runs_numpy and onnx_model.pad_id == tokenizer.pad_token_id
    assert (
        onnx_model.batch_plan([5, 30, 7, 5], 8) == exact_batches([5, 30, 7, 5], 8) == [([0, 3], 5), ([2], 7), ([1], 30)]
    )
    # question + context pairs, padded: segment ids and padding both matter
    batch = tokenizer(
        ["Who founded Apple?", "Where is Paris?", "Who?"],
        ["Steve Jobs founded Apple in California.", "Paris is in France", "Larry Page"],
        padding=True,
        return_tensors="np",
    )
    feeds = {name: batch[name].astype(np.int64) for name in ("input_ids", "attention_mask", "token_type_ids")}
    assert (feeds["attention_mask"] == 0).any() and (feeds["token_type_ids"] == 1).any()
    for task in model.spec.tasks:
        ours, theirs = onnx_model.run(task, **feeds), torch_run(model, task, feeds)
        assert set(ours) == set(theirs) - {"loss"}
        for name, value in ours.items():
            assert value.dtype == np.float32 and value.shape == theirs[name].shape
            np.testing.assert_allclose(value, theirs[name], atol=1e-4, rtol=0)


@pytest.mark.parametrize("batch, length", [(1, 7), (3, 7), (1, 33), (3, 33)])
def test_any_batch_size_and_length(exported, batch, length):
    from mtlcli.inference.onnx_model import OnnxModel

    model, _, root, _ = exported
    onnx_model = OnnxModel(root / "fp32", threads=1)
    feeds = random_feeds(model, batch, length, seed=batch * 100 + length)
    for task in model.spec.tasks:
        theirs = torch_run(model, task, feeds)
        for name, value in onnx_model.run(task, **feeds).items():
            np.testing.assert_allclose(value, theirs[name], atol=1e-4, rtol=0)


def test_int8_export_runs_and_stays_close(exported):
    from mtlcli.export.onnx import export_onnx
    from mtlcli.inference.onnx_model import OnnxModel

    model, _, root, fp32 = exported
    (root / "int8").mkdir()
    report = export_onnx(root / "model", root / "int8", quantize="int8")
    assert report["quantized"] == "int8" and report["max_abs_diff_fp32"] == pytest.approx(
        fp32["max_abs_diff"], abs=1e-6
    )
    assert (root / "int8" / "model.onnx").stat().st_size < (root / "fp32" / "model.onnx").stat().st_size
    onnx_model = OnnxModel(root / "int8", threads=1)
    feeds = random_feeds(model, 4, 24, seed=7)
    real = feeds["attention_mask"] == 1
    for task, name in [("ner", "logits"), ("qa", "start_logits"), ("qa", "end_logits"), ("cls", "logits")]:
        ours, theirs = onnx_model.run(task, **feeds)[name], torch_run(model, task, feeds)[name]
        if task == "qa":  # padding is -1e4 in both; compare the real tokens
            ours, theirs = ours[real], theirs[real]
        scale = np.abs(theirs).max()
        assert np.abs(ours - theirs).max() <= 0.1 * scale, (task, name)  # ~1.5% of the largest logit on this model
    ner_q, ner_f = onnx_model.run("ner", **feeds)["logits"], torch_run(model, "ner", feeds)["logits"]
    assert (ner_q.argmax(-1) == ner_f.argmax(-1))[real].mean() >= 0.8


def test_a_backbone_without_segments_has_no_token_type_input(backbone_dir, tmp_path):
    from mtlcli.export.onnx import export_onnx
    from mtlcli.inference.onnx_model import OnnxModel

    model, _ = tiny_model_dir("distilbert", backbone_dir, tmp_path / "model", tasks=("ner", "qa"))
    (tmp_path / "out").mkdir()
    report = export_onnx(tmp_path / "model", tmp_path / "out")
    assert report["inputs"] == ["input_ids", "attention_mask"] and report["outputs"] == OUTPUTS[:3]
    onnx_model = OnnxModel(tmp_path / "out", threads=1)
    feeds = random_feeds(model, 2, 12, seed=1)
    ours = onnx_model.run("qa", **feeds, token_type_ids=np.ones_like(feeds["input_ids"]))  # ignored, as by PyTorch
    np.testing.assert_allclose(ours["end_logits"], torch_run(model, "qa", feeds)["end_logits"], atol=1e-4, rtol=0)
    with pytest.raises(InputError, match="has no classification head"):
        onnx_model.run("cls", **feeds)
    with pytest.raises(InputError, match="not an ONNX export"):
        OnnxModel(tmp_path / "model")


def test_the_onnx_backend_imports_neither_torch_nor_transformers(exported):
    _, _, root, _ = exported
    code = (
        "import sys, numpy as np; from mtlcli.inference.onnx_model import OnnxModel; "
        f"m = OnnxModel({str(root / 'fp32')!r}); ids = np.array([[2, 9, 3]]); "
        "m.run('ner', ids, np.ones_like(ids)); "
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'transformers')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_missing_extra_is_a_one_line_error(monkeypatch, tmp_path):
    from mtlcli.export.onnx import export_onnx
    from mtlcli.inference.onnx_model import OnnxModel, is_onnx_export

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed: importing it raises ImportError
    message = "ONNX export needs the optional extra 'onnx': pip install 'mtl[onnx]'"
    with pytest.raises(InputError) as raised:
        export_onnx(tmp_path, tmp_path)
    assert str(raised.value) == message
    with pytest.raises(InputError) as raised:
        OnnxModel(tmp_path)
    assert str(raised.value) == message
    assert not is_onnx_export(tmp_path)  # needs no onnxruntime


def test_predict_and_evaluate_run_on_an_export_as_on_the_torch_model(exported, tmp_path):
    """The same tokenization, windows, decoding and records through onnxruntime as through PyTorch."""
    from typer.testing import CliRunner

    from mtlcli.cli.main import app
    from mtlcli.evaluate_run import evaluate_model
    from mtlcli.inference.predictor import Predictor

    model, tokenizer, root, report = exported
    texts = ["Apple hired Steve Jobs in California .", "Paris is in France", "the dog"]
    ours, theirs = Predictor(root / "model", device="cpu", precision="fp32"), Predictor(root / "fp32")
    assert theirs.precision == "fp32" and type(theirs.model).__name__ == "OnnxModel"
    for a, b in zip(ours.ner(texts), theirs.ner(texts)):
        assert a.tags == b.tags and a.scores == pytest.approx(b.scores, abs=1e-4)
    context = "Apple was founded by Steve Jobs in California. " * 20  # several windows
    for a, b in zip(
        ours.qa(["Who founded Apple?"], [context], n_best=3)[0],
        theirs.qa(["Who founded Apple?"], [context], n_best=3)[0],
    ):
        assert (a.start, a.end) == (b.start, b.end) and a.score == pytest.approx(b.score, abs=1e-4)
    assert list(ours.cls(texts)[0]) == list(theirs.cls(texts)[0])

    jsonl = tmp_path / "ner.jsonl"
    jsonl.write_text('{"tokens": ["Paris", "is", "in", "France"], "tags": ["B-LOC", "O", "O", "B-LOC"]}\n')
    torch_report = evaluate_model(root / "model", {"ner": str(jsonl)})
    onnx_report = evaluate_model(root / "fp32", {"ner": str(jsonl)})
    assert onnx_report.metrics["ner"]["f1"] == torch_report.metrics["ner"]["f1"]
    assert onnx_report.metrics["precision"] == "fp32" and onnx_report.metrics["device"] == "cpu"

    result = CliRunner().invoke(app, ["predict-ner", str(root / "fp32"), "Paris is in France", "--format", "jsonl"])
    assert result.exit_code == 0 and json.loads(result.stdout)["text"] == "Paris is in France"
    refused = CliRunner().invoke(app, ["predict-ner", str(root / "fp32"), "Paris", "--precision", "bf16"])
    assert refused.exit_code == 2 and "ONNX export" in refused.output


def test_onnx_predictions_do_not_depend_on_the_batch_size(exported):
    """Rows of one length per batch, unpadded: each row computes the same at any batch size (fp32)."""
    from conftest import NER_SENTENCES

    from mtlcli.inference.predictor import Predictor
    from mtlcli.inputs import TextItem

    _, _, root, _ = exported
    predictor = Predictor(root / "fp32")
    texts = [" ".join(tokens) for tokens, _ in NER_SENTENCES] * 3
    alone = [r.scores for r in predictor.predict("ner", [TextItem(t) for t in texts], batch_size=1)]
    together = [r.scores for r in predictor.predict("ner", [TextItem(t) for t in texts], batch_size=64)]
    assert alone == together


def test_mtl_export_onnx_command_writes_a_checked_graph(exported, tmp_path):
    from typer.testing import CliRunner

    from mtlcli.cli.main import app

    _, _, root, _ = exported
    result = CliRunner().invoke(app, ["export", str(root / "model"), "--format", "onnx", "-o", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert "max abs difference" in result.output and "fused" in result.output
    assert {"model.onnx", "config.json", "tokenizer.json"} <= {p.name for p in (tmp_path / "x").iterdir()}
    wrong = CliRunner().invoke(
        app, ["export", str(root / "model"), "--format", "onnx", "--task", "ner", "-o", str(tmp_path / "y")]
    )
    assert wrong.exit_code == 2 and "every head in one graph" in wrong.output and not (tmp_path / "y").exists()
