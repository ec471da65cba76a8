"""Task-private LoRA adapters (peft) on the shared encoder: settings, switching, save/load, training, predict, export."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_model_dir
from typer.testing import CliRunner

from mtlcli.adapters import parse_adapters, resolve_adapters
from mtlcli.cli.main import app
from mtlcli.config import resolve
from mtlcli.errors import InputError

SENTENCES = ["Paris is in France", "Steve Jobs hired Larry Page in California today"]


def test_settings_defaults_and_errors():
    assert parse_adapters("") == {}
    assert parse_adapters("lora:r=8") == {"kind": "lora", "r": 8, "alpha": None, "dropout": 0.1, "targets": None}
    custom = parse_adapters("lora:r=4,alpha=8,dropout=0,targets=query+key+value")
    assert (custom["r"], custom["alpha"], custom["dropout"], custom["targets"]) == (
        4,
        8.0,
        0.0,
        ["query", "key", "value"],
    )
    assert resolve_adapters("lora:r=8", {"model_type": "bert"})["targets"] == ["query", "value"]
    assert resolve_adapters("lora:r=8", {"model_type": "bert"})["alpha"] == 16.0
    assert resolve_adapters("lora:r=8", {"model_type": "distilbert"})["targets"] == ["q_lin", "v_lin"]
    for bad, reason in [
        ("prefix:r=8", "must be 'lora:r=R'"),
        ("lora:rank=8", "unknown LoRA option 'rank=8'"),
        ("lora:r=eight", "takes a number"),
        ("lora:r=0", "r ≥ 1"),
    ]:
        with pytest.raises(InputError, match=reason):
            resolve([], [f"task_adapters={bad}"])


def inputs(tokenizer):
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


@pytest.fixture(scope="module")
def adapter_model(backbone_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("adapters") / "model"
    model, tokenizer = tiny_model_dir("bert", backbone_dir, directory, segments=False, adapters="lora:r=4")
    return directory, model, tokenizer


def test_each_task_runs_with_its_own_adapter(adapter_model):
    from mtlcli.adapters import merged_encoder, use_adapter

    _, model, tokenizer = adapter_model
    batch = inputs(tokenizer)
    with torch.no_grad():
        states = {}
        for task in ("ner", "qa", "cls"):
            use_adapter(model.encoder, task)
            states[task] = model.encode(**batch)
        assert not torch.allclose(states["ner"], states["qa"]) and not torch.allclose(states["qa"], states["cls"])
        model("qa", **batch)  # a task's forward pass switches to its adapter
        assert torch.equal(model.encode(**batch), states["qa"])
        # the merged copy of a task computes what the task's own forward pass computes, with no LoRA layer left
        for task in ("ner", "qa"):
            merged = merged_encoder(model.encoder, task)
            assert not any("lora" in name for name, _ in merged.named_parameters())
            assert torch.allclose(merged(**batch).last_hidden_state, states[task], atol=1e-5)
        assert all(p.requires_grad for p in model.parameters())  # switching never freezes an adapter


def test_adapters_survive_save_and_load(adapter_model):
    from mtlcli.model import load_model

    directory, model, tokenizer = adapter_model
    spec = json.loads((directory / "config.json").read_text())
    assert spec["adapters"]["targets"] == ["query", "value"] and spec["adapters"]["r"] == 4
    loaded, _ = load_model(directory)
    batch = inputs(tokenizer)
    with torch.no_grad():
        for task, output in (("ner", "logits"), ("qa", "start_logits"), ("cls", "logits")):
            assert torch.equal(loaded(task, **batch)[output], model(task, **batch)[output])


def test_a_run_trains_every_task_adapter_and_predicts(backbone_dir, tmp_path, ner_file, qa_file):
    from safetensors.torch import load_file

    from mtlcli.inference.predictor import Predictor
    from mtlcli.model import load_model
    from mtlcli.training.trainer import train

    for step_mode in ("sampled", "joint"):
        out = tmp_path / step_mode
        config = resolve(
            [],
            [
                f'backbone="{backbone_dir}"',
                f'output_dir="{out}"',
                'cache_dir=""',
                "precision=fp32",
                "batch_size=4",
                "lr=1e-3",
                "epochs=1",
                "max_length=32",
                "qa_max_length=48",
                "doc_stride=16",
                f"step_mode={step_mode}",
                f'ner_train="{ner_file}"',
                f'qa_train="{qa_file}"',
                'task_adapters="lora:r=2"',
                "freeze_layers=1",
            ],
        )
        train(config)
        state = load_file(str(out / "last" / "model.safetensors"))
        for task in ("ner", "qa"):  # LoRA's B starts at zero: training moved every task's adapter
            moved = [name for name, t in state.items() if f".lora_B.{task}." in name and t.abs().sum() > 0]
            assert len(moved) == 4, (step_mode, task)  # query and value of both layers
        # the first layer is frozen, its adapters are not
        first = "encoder.encoder.layer.0.attention.self.query"
        fresh = load_model(out / "last")[0].state_dict()
        assert torch.equal(state[f"{first}.base_layer.weight"], fresh[f"{first}.base_layer.weight"])
        assert state[f"{first}.lora_B.ner.weight"].abs().sum() > 0
    predictor = Predictor(out / "last", device="cpu", precision="fp32")
    direct, tokenizer = load_model(out / "last")
    result = predictor.ner(["Paris is in France"])[0]
    with torch.no_grad():
        batch = tokenizer(["Paris is in France"], return_tensors="pt")
        logits = direct("ner", input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])["logits"]
    names = direct.spec.labels_of("ner")
    first_pieces = [i for i, w in enumerate(batch.word_ids()) if w is not None and w != batch.word_ids()[i - 1]]
    assert result.tags == [names[int(logits[0, i].argmax())] for i in first_pieces]


def test_hf_export_merges_each_task_adapter(adapter_model, tmp_path):
    from transformers import AutoModelForQuestionAnswering, AutoModelForTokenClassification

    directory, model, tokenizer = adapter_model
    result = CliRunner().invoke(app, ["export", str(directory), "--format", "hf", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    batch = inputs(tokenizer)
    with torch.no_grad():
        ner, info = AutoModelForTokenClassification.from_pretrained(tmp_path / "out" / "ner", output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"]
        assert torch.allclose(ner(**batch).logits, model("ner", **batch)["logits"], atol=1e-5)
        qa = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "out" / "qa")
        real = batch["attention_mask"].bool()
        assert torch.allclose(qa(**batch).start_logits[real], model("qa", **batch)["start_logits"][real], atol=1e-5)
        # each export carries its own task's adapter: the two encoders differ
        assert not torch.allclose(
            ner.bert.encoder.layer[0].attention.self.query.weight, qa.bert.encoder.layer[0].attention.self.query.weight
        )
    refused = CliRunner().invoke(app, ["export", str(directory), "--format", "onnx", "-o", str(tmp_path / "onnx")])
    assert refused.exit_code == 2 and "use --format hf" in " ".join(refused.output.split())
