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

from . import __version__, tasks
from .adapters import add_task_adapters, use_adapter
from .errors import InputError, Problem
from .spec import CONFIG_FILE, WEIGHTS_FILE, ModelSpec, read_spec


class MultiTaskModel(nn.Module):
    """The shared encoder and one head per task; each task (mtlcli.tasks) builds its head and computes its loss."""

    def __init__(self, spec: ModelSpec, encoder: nn.Module):
        super().__init__()
        self.spec = spec
        if spec.adapters:  # task-private LoRA adapters (mtlcli.adapters)
            add_task_adapters(encoder, spec.adapters, spec.tasks)
        self.encoder = encoder
        self.dropout = nn.Dropout(spec.head_dropout)
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict(
            {
                task: tasks.get(task).build_head(hidden, spec.labels_of(task), spec.heads.get(task, {}))
                for task in spec.tasks
            }
        )
        for layer in self.heads.modules():  # heads start small (BERT's initializer range), biases at zero
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        for task in spec.tasks:
            tasks.get(task).initialize(self.heads[task], encoder)
        self._eager_while_training = False

    def train(self, mode: bool = True):
        """Training on a CPU computes attention eagerly, inference keeps SDPA. Torch's CPU SDPA trains slowly: with
        attention dropout it leaves its flash kernel for a math path, and the flash backward is slow without it; on
        2 cores a QA training step (16 x 384) took 1.3-1.6x the time with SDPA, NER ~5% more. Inference with the
        flash kernel is 2x faster than eager. An implementation set by hand (the ONNX export's eager) stays."""
        super().train(mode)
        config = getattr(self.encoder, "config", None)
        implementation = getattr(config, "_attn_implementation", None)
        on_cpu = next(self.encoder.parameters()).device.type == "cpu"
        if mode and on_cpu and implementation == "sdpa":
            self.encoder.set_attn_implementation("eager")
            self._eager_while_training = True
        elif not mode and self._eager_while_training:
            self.encoder.set_attn_implementation("sdpa")
            self._eager_while_training = False
        return self

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids=None, pack_ids=None):
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}  # DistilBERT takes none
        if pack_ids is not None:  # sentences sharing rows (mtlcli.training.packing): each attends to itself
            from .training.packing import packed_attention

            attention_mask, extra["position_ids"] = packed_attention(pack_ids, self.encoder.dtype)
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    def forward(self, task: str, input_ids, attention_mask, token_type_ids=None, pack_ids=None, **targets) -> dict:
        """Logits of one task's head, and its loss when the batch carries targets."""
        if self.spec.adapters:
            use_adapter(self.encoder, task)
        hidden = self.encode(input_ids, attention_mask, token_type_ids, pack_ids)
        return self.head_forward(task, hidden, attention_mask, **targets)

    def head_forward(self, task: str, hidden, attention_mask, **targets) -> dict:
        return tasks.get(task).head_forward(self.heads[task], hidden, attention_mask, self.dropout, targets)

    def batch_plan(self, lengths: list[int], batch_size: int) -> list[tuple[list[int], int | None]]:
        """(rows, padded width) per inference batch: length-sorted, each padded to its longest row."""
        from .inference.batching import sorted_batches

        return [(rows, None) for rows in sorted_batches(lengths, batch_size)]

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


def load_model(directory: str | Path, device: str = "cpu", lean: bool = False) -> tuple[MultiTaskModel, object]:
    """Rebuild the encoder from the saved backbone config (no Hub), load weights, check every shape.

    `lean` (inference only): a plain BERT encoder is built by mtlcli.inference.bert and the tokenizer is the
    directory's tokenizer.json run by `tokenizers`, so that transformers is not imported (seconds of a cold
    start); other backbones are built by transformers as always."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    spec = read_spec(directory)
    model = MultiTaskModel(spec, _encoder(spec, lean))
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
        raise InputError(
            Problem(str(weights), "", f"weights do not match config.json: {problems[0]} (and {len(problems) - 1} more)")
        )
    model.load_state_dict(state)
    return model.to(device).eval(), _tokenizer(directory, lean)


def _encoder(spec: ModelSpec, lean: bool) -> nn.Module:
    if lean:
        from .inference.bert import native_encoder

        encoder = native_encoder(spec.backbone_config)
        if encoder is not None:
            return encoder
    from transformers import AutoConfig, AutoModel

    return AutoModel.from_config(AutoConfig.for_model(**spec.backbone_config), dtype=torch.float32)  # as trained


def _tokenizer(directory: Path, lean: bool):
    from .inference.fast_tokenizer import TOKENIZER_FILE, FastTokenizer

    if lean and (directory / TOKENIZER_FILE).is_file():
        return FastTokenizer(directory)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(directory))
