"""An ONNX export of an mtl model (`mtl export --format onnx`) run with ONNX Runtime, without torch.

    model = OnnxModel("exports/demo")
    model.run("qa", input_ids, attention_mask)   # {"start_logits": ..., "end_logits": ...}, float32 numpy

The export holds one graph of the shared encoder and every head, with outputs named "{task}.{output}"; `run`
returns one task's outputs under their plain names, as the PyTorch model's forward does. Only numpy,
onnxruntime and mtl's torch-free modules are imported here: a deployment needs neither torch nor transformers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .. import tasks
from ..errors import InputError, Problem
from ..spec import CONFIG_FILE, read_spec

ONNX_FILE = "model.onnx"
ONNX_FORMAT = "onnx"  # the "format" field of an export's config.json
MISSING_EXTRA = "ONNX export needs the optional extra 'onnx': pip install 'mtl[onnx]'"


def require_onnxruntime():
    """onnxruntime, or the one-line InputError that names the extra to install."""
    try:
        import onnxruntime
    except ImportError:
        raise InputError(MISSING_EXTRA) from None
    return onnxruntime


def is_onnx_export(directory: str | Path) -> bool:
    """Whether `directory` is an ONNX export of an mtl model (its config.json says so and the graph is there)."""
    directory = Path(directory)
    try:
        data = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == ONNX_FORMAT and (directory / ONNX_FILE).is_file()


def default_threads() -> int:
    """MTL_THREADS, else every core this process may run on (torch's default is alike; a container's CPU set
    can be smaller than os.cpu_count())."""
    value = os.environ.get("MTL_THREADS", "").strip()
    if value:
        try:
            if int(value) > 0:
                return int(value)
        except ValueError:
            pass
        raise InputError(f"MTL_THREADS must be a positive whole number, got '{value}'")
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OnnxModel:
    """The ONNX counterpart of a prepared InferenceModel: same spec and pad id, its own batch plan; numpy in and out."""

    runs_numpy = True  # callers pass numpy arrays to `run` (not tensors to `forward`)

    def __init__(self, directory: str | Path, threads: int | None = None):
        ort = require_onnxruntime()
        self.directory = Path(directory)
        self.spec = read_spec(self.directory)  # a missing directory or config.json: the usual one-line errors
        if not is_onnx_export(self.directory):
            raise InputError(
                Problem(
                    str(self.directory),
                    "",
                    "not an ONNX export of an mtl model "
                    f'(config.json has no "format": "onnx" or {ONNX_FILE} is missing)',
                )
            )
        config = self.spec.backbone_config
        self.pad_id = config.get("pad_token_id") or 0
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1  # one graph run at a time: parallelism is within the operators
        try:
            self.session = ort.InferenceSession(
                str(self.directory / ONNX_FILE), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own, unexported exception types
            raise InputError(
                Problem(str(self.directory / ONNX_FILE), "", f"cannot load the ONNX graph: {err}")
            ) from None
        self.input_names = [node.name for node in self.session.get_inputs()]
        available = {node.name for node in self.session.get_outputs()}
        missing = [
            f"{task}.{name}"
            for task in self.spec.tasks
            for name in tasks.get(task).output_names
            if f"{task}.{name}" not in available
        ]
        if missing:
            raise InputError(
                Problem(
                    str(self.directory / ONNX_FILE),
                    "",
                    f"the graph has no output {missing[0]} that config.json's tasks need (an export of another model?)",
                )
            )

    @staticmethod
    def quantization(directory) -> str | None:
        """'int8' for an export made with --quantize int8, else None (read from config.json, no onnxruntime)."""
        try:
            config = json.loads((Path(directory) / CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return (config.get(ONNX_FORMAT) or {}).get("quantized")

    def batch_plan(self, lengths: list[int], batch_size: int) -> list[tuple[list[int], int]]:
        """Batches of rows of one length, unpadded. PyTorch's path pads to a few bucket widths because oneDNN
        builds kernels per shape; ONNX Runtime's CPU kernels cost nothing per new shape, so the bucket padding
        (~19% more tokens on CoNLL-2003 sentences) would be pure waste. A row's width is still its own, whatever
        its companions: results do not depend on the batch size (the GEMMs never split a row's sum)."""
        from .batching import exact_batches

        return exact_batches(lengths, batch_size)

    def run(
        self, task: str, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """One task's head outputs (float32) for a padded [batch, sequence] batch, by their plain names."""
        if task not in self.spec.tasks:
            have = ", ".join(tasks.get(t).title for t in self.spec.tasks) or "none"
            raise InputError(f"this model has no {tasks.get(task).title} head (its tasks: {have})")
        input_ids = np.asarray(input_ids, dtype=np.int64)
        feeds = {"input_ids": input_ids, "attention_mask": np.asarray(attention_mask, dtype=np.int64)}
        if "token_type_ids" in self.input_names:  # a model trained with segment ids; single texts are segment 0
            feeds["token_type_ids"] = (
                np.zeros_like(input_ids) if token_type_ids is None else np.asarray(token_type_ids, dtype=np.int64)
            )
        names = tasks.get(task).output_names
        outputs = self.session.run([f"{task}.{name}" for name in names], feeds)
        return {name: np.asarray(value, dtype=np.float32) for name, value in zip(names, outputs)}
