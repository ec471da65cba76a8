"""Batched forward passes over features and their decoding back to words, spans and labels.

Used by validation during training, by `mtl evaluate` and by the predict commands, so that every
path decodes the same way. Rows are run in length order (less padding) and put back in input order.
The hot loop does one forward and a few vectorized numpy operations per batch: no per-token Python.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from .features import Features
from .invariant import bucketed_batches
from .training.batching import sorted_batches


@dataclass
class Span:
    text: str
    start: int  # character offsets into the context
    end: int
    score: float  # probability among the n-best candidates


def pad_rows(features: Features, rows: list[int], pad_id: int, width: int | None = None):
    """input_ids and attention_mask of `rows`, right-padded to `width` (default: the longest), and the true lengths."""
    sequences = [features.input_ids[r] for r in rows]
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    input_ids = np.full((len(rows), width or int(lengths.max())), pad_id, dtype=np.int64)
    mask = np.arange(input_ids.shape[1]) < lengths[:, None]
    input_ids[mask] = np.fromiter((t for s in sequences for t in s), dtype=np.int64, count=int(lengths.sum()))
    return torch.from_numpy(input_ids), torch.from_numpy(mask.astype(np.int64)), lengths


def batches_of(model, features: Features, batch_size: int) -> list[tuple[list[int], int | None]]:
    """(rows, padded width) per batch, in length order. A model made batch-invariant (mtlcli.invariant) gets
    fixed-width buckets; any other is padded to the longest row of each batch."""
    if getattr(model, "fixed_widths", False):  # set by mtlcli.invariant.prepare_for_inference
        limit = getattr(model.encoder.config, "max_position_embeddings", None)
        return bucketed_batches(features.lengths(), batch_size, limit)
    return [(rows, None) for rows in sorted_batches(features.lengths(), batch_size)]


def forward_batches(model, task: str, features: Features, batch_size: int, device, autocast=contextlib.nullcontext):
    """Yield (rows, head outputs as float32 numpy arrays, true lengths) per length-sorted batch.

    Autocast is entered once around the whole loop, so that its cast of the weights is cached across batches.
    """
    pad_id = model.encoder.config.pad_token_id or 0
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast():
            for rows, width in batches_of(model, features, batch_size):
                input_ids, attention_mask, lengths = pad_rows(features, rows, pad_id, width)
                out = model(task, input_ids=input_ids.to(device), attention_mask=attention_mask.to(device))
                if task == "qa":
                    arrays = {k: out[k].float().cpu().numpy() for k in ("start_logits", "end_logits")}
                else:
                    arrays = {"logits": out["logits"].float().cpu().numpy()}
                yield rows, arrays, lengths
    finally:
        model.train(was_training)


def forward_rows(model, task: str, features: Features, batch_size: int, device, autocast=contextlib.nullcontext):
    """Yield (row index, head output of that row as numpy, trimmed to its true length)."""
    for rows, out, lengths in forward_batches(model, task, features, batch_size, device, autocast):
        for i, row in enumerate(rows):
            if task == "qa":
                yield row, (out["start_logits"][i, : lengths[i]], out["end_logits"][i, : lengths[i]])
            else:
                yield row, out["logits"][i, : lengths[i]] if task == "ner" else out["logits"][i]


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def decode_ner(model, features: Features, num_words: list[int], batch_size: int, device, autocast=contextlib.nullcontext):
    """Per example: (label id per word, probability of that label). Words with no sub-token get O (id 0)."""
    labels = [np.zeros(n, dtype=np.int64) for n in num_words]
    scores = [np.ones(n, dtype=np.float32) for n in num_words]
    for rows, out, _ in forward_batches(model, "ner", features, batch_size, device, autocast):
        logits = out["logits"]
        width = logits.shape[1]
        words = np.full((len(rows), width), -1, dtype=np.int64)
        for i, row in enumerate(rows):
            index = features.word_index[row]
            words[i, : len(index)] = index
        batch_rows, positions = np.nonzero(words >= 0)  # first sub-token of each word the row owns
        probs = softmax(logits[batch_rows, positions])
        best, best_prob = probs.argmax(-1), probs.max(-1)
        examples = np.asarray([features.example[r] for r in rows])[batch_rows]
        word_ids = words[batch_rows, positions]
        bounds = np.searchsorted(batch_rows, np.arange(len(rows) + 1))  # np.nonzero is row-major: rows are runs
        for i in range(len(rows)):
            a, b = bounds[i], bounds[i + 1]
            if a < b:
                labels[examples[a]][word_ids[a:b]] = best[a:b]
                scores[examples[a]][word_ids[a:b]] = best_prob[a:b]
    return labels, scores


def decode_qa(
    model, features: Features, contexts: list[str], batch_size: int, device,
    autocast=contextlib.nullcontext, n_best: int = 20, max_answer_length: int = 30,
) -> list[list[Span]]:
    """run_qa.py's post-processing: the n best valid spans over all windows of each example.

    A span's score is start logit + end logit; the same character span seen from two windows keeps its
    best score; the probabilities are a softmax over the n best."""
    found: list[list[np.ndarray]] = [[] for _ in contexts]  # per example: rows of (score, start char, end char)
    for rows, out, lengths in forward_batches(model, "qa", features, batch_size, device, autocast):
        for i, row in enumerate(rows):
            candidates = _window_candidates(out["start_logits"][i, : lengths[i]], out["end_logits"][i, : lengths[i]],
                                            features.offsets[row], n_best, max_answer_length)
            if candidates is not None:
                found[features.example[row]].append(candidates)
    results = []
    for context, parts in zip(contexts, found):
        if not parts:
            results.append([Span("", 0, 0, 0.0)])
            continue
        table = np.concatenate(parts)
        # best score first; ties keep the earlier span; then one entry per distinct (start, end)
        table = table[np.lexsort((table[:, 1], -table[:, 0]))]
        _, first = np.unique(table[:, 1:], axis=0, return_index=True)
        table = table[np.sort(first)][:n_best]
        probs = softmax(table[:, 0])
        results.append([Span(context[int(s):int(e)], int(s), int(e), float(p)) for (_, s, e), p in zip(table, probs)])
    return results


def _window_candidates(start_logits, end_logits, offsets, n_best: int, max_answer_length: int):
    """(score, start char, end char) of the valid spans among the window's n best starts × n best ends."""
    k = min(n_best, len(start_logits))
    starts = np.argsort(-start_logits, kind="stable")[:k]
    ends = np.argsort(-end_logits, kind="stable")[:k]
    start_ok = np.array([offsets[j] is not None for j in starts.tolist()])
    end_ok = np.array([offsets[j] is not None for j in ends.tolist()])
    s, e = starts[:, None], ends[None, :]
    valid = start_ok[:, None] & end_ok[None, :] & (e >= s) & (e - s + 1 <= max_answer_length)
    si, ei = np.nonzero(valid)
    if not len(si):
        return None
    s, e = starts[si], ends[ei]
    first_char = [offsets[j][0] for j in s.tolist()]
    last_char = [offsets[j][1] for j in e.tolist()]
    scores = start_logits[s].astype(np.float64) + end_logits[e].astype(np.float64)
    return np.stack([scores, np.asarray(first_char, dtype=np.float64), np.asarray(last_char, dtype=np.float64)], axis=1)


def decode_cls(model, features: Features, batch_size: int, device, autocast=contextlib.nullcontext) -> np.ndarray:
    """Class probabilities, one row per example."""
    probs = [None] * len(features)
    for rows, out, _ in forward_batches(model, "cls", features, batch_size, device, autocast):
        for row, p in zip(rows, softmax(out["logits"])):
            probs[row] = p
    return np.stack(probs) if probs else np.zeros((0, 0))
