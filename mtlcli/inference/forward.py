"""The batched forward pass behind validation, `mtl evaluate`, the predictors and the benchmark.

Rows run in the model's batch plan (length order: less padding) and come back with their row indices, so
each task's decoding (mtlcli.tasks) puts them back in input order. One forward and a few vectorized numpy
operations per batch: no per-token Python.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .. import tasks
from .batching import pad_rows, pad_segments


def forward_batches(model, task: str, features, batch_size: int, device, autocast=contextlib.nullcontext):
    """Yield (rows, head outputs as float32 numpy arrays, true lengths) per batch of `model.batch_plan`.

    Autocast is entered once around the whole loop, so that its cast of the weights is cached across batches.
    """
    pad_id = model.encoder.config.pad_token_id or 0
    names = tasks.get(task).output_names
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast():
            for rows, width in model.batch_plan(features.lengths(), batch_size):
                input_ids, attention_mask, lengths = pad_rows(features, rows, pad_id, width)
                segments = pad_segments(features, rows, input_ids.shape[1])
                extra = {} if segments is None else {"token_type_ids": segments.to(device)}
                out = model(task, input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), **extra)
                yield rows, {name: out[name].float().cpu().numpy() for name in names}, lengths
    finally:
        model.train(was_training)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
