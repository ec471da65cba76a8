import json
import sys

import pytest
import torch

from mtlcli.config import resolve
from mtlcli.model import load_model
from mtlcli.training.trainer import train


def tiny_config(backbone_dir, tmp_path, **files):
    settings = [
        f'backbone="{backbone_dir}"',
        f'output_dir="{tmp_path / "run"}"',
        'cache_dir=""',
        "precision=fp32",
        "batch_size=4",
        "eval_batch_size=8",
        "lr=2e-3",
        "warmup_ratio=0.0",
        "head_dropout=0.0",
        "max_length=32",
        "qa_max_length=64",
        "doc_stride=16",
    ]
    settings += [f'{key}="{value}"' for key, value in files.items()]
    return settings


@pytest.mark.parametrize("step_mode", ["sampled", "joint"])
def test_tiny_model_overfits_ner_and_qa(backbone_dir, tmp_path, ner_file, qa_file, step_mode):
    settings = tiny_config(
        backbone_dir, tmp_path, ner_train=ner_file, ner_valid=ner_file, qa_train=qa_file, qa_valid=qa_file
    )
    config = resolve([], settings + ["epochs=40", f"step_mode={step_mode}"])
    events = []
    result = train(config, lambda kind, data: events.append(kind))
    final = result.history[-1]["valid"]
    assert final["ner"]["f1"] >= 0.9, final["ner"]
    assert final["qa"]["exact_match"] >= 75, final["qa"]
    assert result.history[-1]["train_loss"]["ner"] < result.history[0]["train_loss"]["ner"]
    assert {"data", "start", "step", "eval", "end"} <= set(events)
    run = tmp_path / "run"
    assert (run / "last" / "model.safetensors").is_file() and (run / "best-ner").is_dir() and (run / "best-qa").is_dir()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["type"] == "epoch"]
    assert len(epochs) == 40
    if sys.platform == "linux":  # memory per epoch (issue 17): the RSS now and its peak so far, which never falls
        peaks = [r["peak_rss_mb"] for r in epochs]
        assert all(0 < r["rss_mb"] <= r["peak_rss_mb"] for r in epochs) and peaks == sorted(peaks)
        assert all(r["rss_mb"] > 0 for r in records if r["type"] == "step")
    assert (run / "training_metrics.csv").read_text().startswith("epoch,")


def test_save_load_round_trip_gives_identical_outputs(backbone_dir, tmp_path, ner_file, cls_file):
    config = resolve([], tiny_config(backbone_dir, tmp_path, ner_train=ner_file, cls_train=cls_file) + ["epochs=1"])
    train(config)
    model, tokenizer = load_model(tmp_path / "run" / "last")
    again, _ = load_model(tmp_path / "run" / "last")
    batch = tokenizer(["Apple hired Steve Jobs ."], return_tensors="pt")
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.inference_mode():
        for task in ("ner", "cls"):
            assert torch.equal(model(task, **inputs)["logits"], again(task, **inputs)["logits"])
    assert model.spec.tasks == ["ner", "cls"] and model.spec.labels["cls"] == ["other", "person"]


def test_output_dir_is_not_overwritten_by_accident(backbone_dir, tmp_path, ner_file):
    from mtlcli.errors import InputError

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("precious")
    config = resolve([], tiny_config(backbone_dir, tmp_path, ner_train=ner_file) + ["epochs=1"])
    with pytest.raises(InputError, match="not empty"):
        train(config)
    assert (tmp_path / "run" / "keep.txt").read_text() == "precious"


def test_eval_strategy_end_validates_only_after_the_last_epoch(backbone_dir, tmp_path, ner_file):
    settings = tiny_config(backbone_dir, tmp_path, ner_train=ner_file, ner_valid=ner_file)
    result = train(resolve([], settings + ["epochs=3", "eval_strategy=end"]))
    assert [bool(record["valid"]) for record in result.history] == [False, False, True]
    assert set(result.best) == {"ner"} and (tmp_path / "run" / "best-ner").is_dir()


def test_eval_strategy_end_refuses_early_stopping():
    from mtlcli.errors import InputError

    with pytest.raises(InputError, match="eval_strategy=epoch"):
        resolve([], ["eval_strategy=end", "patience=2"])


def test_a_backbone_saved_in_half_precision_trains_with_fp32_weights(backbone_dir, tmp_path):
    import shutil

    from transformers import AutoModel

    from mtlcli.backbones import load_encoder

    half = tmp_path / "half"
    shutil.copytree(backbone_dir, half)
    AutoModel.from_pretrained(backbone_dir).half().save_pretrained(half)
    assert AutoModel.from_pretrained(half).dtype == torch.float16  # what transformers 5 gives by default
    assert {p.dtype for p in load_encoder(str(half)).parameters()} == {torch.float32}
    assert {p.dtype for p in load_encoder(str(half), random_init=True).parameters()} == {torch.float32}


def test_a_numbered_gpu_is_a_valid_device():
    from mtlcli.errors import InputError

    assert resolve([], ["device=cuda:1"]).device == "cuda:1"  # as predict and evaluate take it
    assert resolve([], ["device=cuda:0"]).device == "cuda:0"
    for bad in ("cuda:", "cuda:x", "cuda:-1", "cuda:1:2", "gpu"):
        with pytest.raises(InputError, match="device"):
            resolve([], [f"device={bad}"])
