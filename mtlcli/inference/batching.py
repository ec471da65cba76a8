"""Inference batches: length-sorted rows, fixed-width buckets or rows of one length (batch invariance); padding."""

from __future__ import annotations

import numpy as np


def sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_rows(features, rows: list[int], pad_id: int, width: int | None = None) -> dict[str, np.ndarray]:
    """The model inputs of `rows` as int64 numpy arrays right-padded to `width` (default: the longest row):
    input_ids, attention_mask and, where the features carry segment ids, token_type_ids; and "lengths"."""
    sequences = [features.input_ids[r] for r in rows]
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    input_ids = np.full((len(rows), width or int(lengths.max())), pad_id, dtype=np.int64)
    mask = np.arange(input_ids.shape[1]) < lengths[:, None]
    input_ids[mask] = np.fromiter((t for s in sequences for t in s), dtype=np.int64, count=int(lengths.sum()))
    batch = {"input_ids": input_ids, "attention_mask": mask.astype(np.int64), "lengths": lengths}
    if features.token_type_ids:
        segments = np.zeros_like(input_ids)
        segments[mask] = np.fromiter(
            (t for r in rows for t in features.token_type_ids[r]), dtype=np.int64, count=int(lengths.sum())
        )
        batch["token_type_ids"] = segments
    return batch


def bucket_width(length: int, limit: int | None = None) -> int:
    """The width an input of this length is always computed at: rounded up to a multiple of 8, or of 1/8 of
    its power of two for long ones (at most ~12% more attention, and few distinct widths); never beyond
    `limit` (the encoder's positions)."""
    step = max(8, (1 << max(length.bit_length() - 1, 0)) // 8)
    width = -(-length // step) * step
    return min(width, limit) if limit and limit >= length else width


def bucketed_batches(lengths: list[int], batch_size: int, limit: int | None = None) -> list[tuple[list[int], int]]:
    """(rows, width) batches in length order: each row is padded to its `bucket_width`, and a batch holds
    rows of one width only, so a row's padded width never depends on its companions."""
    return width_batches(lengths, batch_size, lambda length: bucket_width(length, limit))


def exact_batches(lengths: list[int], batch_size: int) -> list[tuple[list[int], int]]:
    """(rows, width) batches of rows of one length each: no padding at all, and a row's width is its own length.
    For backends whose kernels cost nothing per new shape (ONNX Runtime's): the padding is then pure waste."""
    return width_batches(lengths, batch_size, int)


def width_batches(lengths: list[int], batch_size: int, width_of) -> list[tuple[list[int], int]]:
    """(rows, width) batches in length order, each of at most `batch_size` rows of one `width_of(length)`."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[tuple[list[int], int]] = []
    for row in order:
        width = width_of(lengths[row])
        if batches and batches[-1][1] == width and len(batches[-1][0]) < batch_size:
            batches[-1][0].append(row)
        else:
            batches.append(([row], width))
    return batches
