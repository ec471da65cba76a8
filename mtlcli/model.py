"""The shared encoder with NER, QA and classification heads; save/load of a model directory."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from . import __version__
from .errors import InputError, Problem
from .spec import CONFIG_FILE, WEIGHTS_FILE, ModelSpec, read_spec

IGNORE = -100


class MultiTaskModel(nn.Module):
    def __init__(self, spec: ModelSpec, encoder: nn.Module):
        super().__init__()
        self.spec = spec
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(spec.head_dropout)
        self.heads = nn.ModuleDict()
        if "ner" in spec.tasks:
            self.heads["ner"] = nn.Linear(hidden, len(spec.ner_labels))
        if "qa" in spec.tasks:
            self.heads["qa"] = nn.Linear(hidden, 2)
        if "cls" in spec.tasks:
            self.heads["cls"] = nn.Linear(hidden, len(spec.cls_labels))
        for head in self.heads.values():
            nn.init.normal_(head.weight, std=0.02)
            nn.init.zeros_(head.bias)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def forward(self, task: str, input_ids, attention_mask, **targets) -> dict:
        """Logits of one task's head, and its loss when the batch carries targets."""
        hidden = self.encode(input_ids, attention_mask)
        return self.head_forward(task, hidden, attention_mask, **targets)

    def head_forward(self, task: str, hidden, attention_mask, labels=None, start_positions=None, end_positions=None):
        if task == "ner":
            logits = self.heads["ner"](self.dropout(hidden))
            out = {"logits": logits}
            if labels is not None:
                out["loss"] = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE)
            return out
        if task == "qa":
            start_logits, end_logits = self.heads["qa"](hidden).float().unbind(-1)
            # padding can never be an answer
            pad = attention_mask == 0
            start_logits = start_logits.masked_fill(pad, -1e4)
            end_logits = end_logits.masked_fill(pad, -1e4)
            out = {"start_logits": start_logits, "end_logits": end_logits}
            if start_positions is not None:
                out["loss"] = (F.cross_entropy(start_logits, start_positions) + F.cross_entropy(end_logits, end_positions)) / 2
            return out
        if task == "cls":
            logits = self.heads["cls"](self.dropout(hidden[:, 0])).float()
            out = {"logits": logits}
            if labels is not None:
                out["loss"] = F.cross_entropy(logits, labels, ignore_index=IGNORE)
            return out
        raise ValueError(f"unknown task {task}")

    def parameter_counts(self) -> dict[str, int]:
        counts = {"encoder": sum(p.numel() for p in self.encoder.parameters())}
        counts.update({task: sum(p.numel() for p in head.parameters()) for task, head in self.heads.items()})
        return counts


def build_model(spec: ModelSpec, random_init: bool = False, encoder_dropout: float | None = None) -> MultiTaskModel:
    from .backbones import load_encoder

    return MultiTaskModel(spec, load_encoder(spec.backbone, random_init=random_init, dropout=encoder_dropout))


def versions() -> dict:
    import transformers

    return {"mtl": __version__, "torch": torch.__version__, "transformers": transformers.__version__}


def save_model(model: MultiTaskModel, tokenizer, directory: str | Path) -> None:
    """Write the whole directory beside the target, then swap it in: a crash never leaves a half model."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        spec = asdict(model.spec) | {"versions": versions()}
        (staging / CONFIG_FILE).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        state = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
        save_file(state, str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
        tokenizer.save_pretrained(staging)
        for path in staging.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        old = directory.with_name(f".{directory.name}.old")
        if directory.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
        os.replace(staging, directory)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_model(directory: str | Path, device: str = "cpu") -> tuple[MultiTaskModel, object]:
    """Rebuild the encoder from the saved backbone config (no Hub), load weights, check every shape."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    directory = Path(directory)
    spec = read_spec(directory)
    backbone_config = AutoConfig.for_model(**spec.backbone_config)
    model = MultiTaskModel(spec, AutoModel.from_config(backbone_config, dtype=torch.float32))  # as trained
    weights = directory / WEIGHTS_FILE
    try:
        state = load_file(str(weights))
    except (FileNotFoundError, SafetensorError, OSError) as err:
        raise InputError(Problem(str(weights), "", f"cannot read weights: {err}")) from None
    expected = model.state_dict()
    problems = [f"missing {name}" for name in expected if name not in state]
    problems += [f"unexpected {name}" for name in state if name not in expected]
    problems += [
        f"{name} has shape {tuple(state[name].shape)}, expected {tuple(t.shape)}"
        for name, t in expected.items()
        if name in state and state[name].shape != t.shape
    ]
    if problems:
        raise InputError(Problem(str(weights), "", f"weights do not match config.json: {problems[0]} (and {len(problems) - 1} more)"))
    model.load_state_dict(state)
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    return model.to(device).eval(), tokenizer
