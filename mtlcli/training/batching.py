"""Training batches of feature rows: length-grouped, padded per batch."""

from __future__ import annotations

import random

import torch

from .. import tasks
from ..features import SOFT_TARGETS, Features
from .packing import pack_batch

# Training batches are drawn from pools this many batches large and sorted inside the pool:
# most padding goes, while the batch order stays random.
POOL_BATCHES = 50


def training_batches(lengths: list[int], batch_size: int, rng: random.Random, group_by_length: bool) -> list[list[int]]:
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        pool = batch_size * POOL_BATCHES
        order = [i for p in range(0, len(order), pool) for i in sorted(order[p : p + pool], key=lengths.__getitem__)]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(
    features: Features, rows: list[int], task: str, pad_id: int, packed: bool = False
) -> dict[str, torch.Tensor]:
    """A training batch: token ids and mask padded to the longest row, and the task's targets; `packed`: its rows
    sharing rows (mtlcli.training.packing)."""
    width = max(len(features.input_ids[r]) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids = features.input_ids[r]
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention_mask[i, : len(ids)] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    if features.token_type_ids:
        batch["token_type_ids"] = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            batch["token_type_ids"][i, : len(features.token_type_ids[r])] = torch.tensor(features.token_type_ids[r])
    soft = features.extra.get(SOFT_TARGETS)
    if soft is not None:
        batch[SOFT_TARGETS] = pad_soft_targets([soft[r] for r in rows], width)
    batch |= tasks.get(task).targets(features, rows, width)
    return pack_batch(batch, [len(features.input_ids[r]) for r in rows]) if packed else batch


def pad_soft_targets(rows: list[torch.Tensor], width: int) -> torch.Tensor:
    """A teacher's soft targets of a batch (Task.soft_targets): per-token (tokens, k) rows zero-padded to `width`,
    per-row (k,) vectors stacked."""
    if rows[0].ndim == 1:
        return torch.stack(rows)
    padded = torch.zeros((len(rows), width, rows[0].shape[1]), dtype=rows[0].dtype)
    for i, row in enumerate(rows):
        padded[i, : len(row)] = row
    return padded
