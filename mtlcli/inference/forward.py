"""The batched forward pass behind validation, `mtl evaluate`, the predictors and the benchmark.

Rows run in the model's batch plan (length order: less padding) and come back with their row indices, so
each task's decoding (mtlcli.tasks) puts them back in input order. One forward and a few vectorized numpy
operations per batch: no per-token Python.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .. import tasks
from .batching import pad_rows

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def forward_batches(model, task: str, features, batch_size: int, device, autocast=contextlib.nullcontext):
    """Yield (rows, head outputs as float32 numpy arrays, true lengths) per batch of `model.batch_plan`.

    A torch model runs under inference mode and `autocast`, entered once around the whole loop so that its
    cast of the weights is cached across batches; an ONNX model (mtlcli.inference.onnx_model, `runs_numpy`)
    takes the numpy arrays as they are, and torch is not imported for it."""
    if getattr(model, "runs_numpy", False):
        for rows, width in model.batch_plan(features.lengths(), batch_size):
            batch = pad_rows(features, rows, model.pad_id, width)
            yield rows, model.run(task, *(batch.get(name) for name in INPUTS)), batch["lengths"]
        return
    yield from _torch_batches(model, task, features, batch_size, device, autocast)


def _torch_batches(model, task: str, features, batch_size: int, device, autocast):
    import torch

    pad_id = model.encoder.config.pad_token_id or 0
    names = tasks.get(task).output_names
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast():
            for rows, width in model.batch_plan(features.lengths(), batch_size):
                batch = pad_rows(features, rows, pad_id, width)
                inputs = {name: torch.from_numpy(batch[name]).to(device) for name in INPUTS if name in batch}
                out = model(task, **inputs)
                yield rows, {name: out[name].float().cpu().numpy() for name in names}, batch["lengths"]
    finally:
        model.train(was_training)


def softmax(x: np.ndarray) -> np.ndarray:
    # in float64: numpy's float32 exp can round one value differently by the array's size and layout (a score
    # 1 ulp apart between batch sizes); a float64 difference that small does not survive the cast back
    e = np.exp((x - x.max(axis=-1, keepdims=True)).astype(np.float64))
    return (e / e.sum(axis=-1, keepdims=True)).astype(x.dtype)
