"""Batched forward passes over features and their decoding back to words, spans and labels.

Used by validation during training, by `mtl evaluate` and by the predict commands, so that every
path decodes the same way. Rows are run in length order (less padding) and put back in input order.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from .features import Features
from .training.batching import collate, sorted_batches


@dataclass
class Span:
    text: str
    start: int  # character offsets into the context
    end: int
    score: float  # probability among the n-best candidates


def forward_rows(model, task: str, features: Features, batch_size: int, device, autocast=contextlib.nullcontext):
    """Yield (row index, head output of that row as numpy, trimmed to its true length)."""
    pad_id = model.encoder.config.pad_token_id or 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for rows in sorted_batches(features.lengths(), batch_size):
            batch = collate(features, rows, task, pad_id, with_targets=False)
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast():
                out = model(task, **batch)
            lengths = batch["attention_mask"].sum(1).tolist()
            if task == "qa":
                starts, ends = out["start_logits"].float().cpu().numpy(), out["end_logits"].float().cpu().numpy()
                for i, row in enumerate(rows):
                    yield row, (starts[i, : lengths[i]], ends[i, : lengths[i]])
            else:
                logits = out["logits"].float().cpu().numpy()
                for i, row in enumerate(rows):
                    yield row, logits[i, : lengths[i]] if task == "ner" else logits[i]
    model.train(was_training)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def decode_ner(model, features: Features, num_words: list[int], batch_size: int, device, autocast=contextlib.nullcontext):
    """Per example: (label id per word, probability of that label). Words with no sub-token get O (id 0)."""
    labels = [np.zeros(n, dtype=np.int64) for n in num_words]
    scores = [np.ones(n, dtype=np.float32) for n in num_words]
    for row, logits in forward_rows(model, "ner", features, batch_size, device, autocast):
        words = np.asarray(features.word_index[row][: len(logits)])
        keep = words >= 0
        probs = softmax(logits[keep])
        example = features.example[row]
        labels[example][words[keep]] = probs.argmax(-1)
        scores[example][words[keep]] = probs.max(-1)
    return labels, scores


def decode_qa(
    model, features: Features, contexts: list[str], batch_size: int, device,
    autocast=contextlib.nullcontext, n_best: int = 20, max_answer_length: int = 30,
) -> list[list[Span]]:
    """run_qa.py's post-processing: the n best valid spans over all windows of each example."""
    candidates: list[list[tuple[float, int, int]]] = [[] for _ in contexts]
    for row, (start_logits, end_logits) in forward_rows(model, "qa", features, batch_size, device, autocast):
        offsets = features.offsets[row]
        example = features.example[row]
        top_starts = np.argsort(start_logits)[::-1][:n_best]
        top_ends = np.argsort(end_logits)[::-1][:n_best]
        for s in top_starts:
            if offsets[s] is None:
                continue
            for e in top_ends:
                if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                candidates[example].append((float(start_logits[s] + end_logits[e]), offsets[s][0], offsets[e][1]))
    results = []
    for context, found in zip(contexts, candidates):
        best: dict[tuple[int, int], float] = {}
        for score, start, end in found:  # the same span seen from two windows keeps its best score
            if score > best.get((start, end), -np.inf):
                best[(start, end)] = score
        ranked = sorted(best.items(), key=lambda item: -item[1])[:n_best]
        if not ranked:
            results.append([Span("", 0, 0, 0.0)])
            continue
        probs = softmax(np.array([score for _, score in ranked]))
        results.append([Span(context[s:e], s, e, float(p)) for ((s, e), _), p in zip(ranked, probs)])
    return results


def decode_cls(model, features: Features, batch_size: int, device, autocast=contextlib.nullcontext) -> np.ndarray:
    """Class probabilities, one row per example."""
    probs = [None] * len(features)
    for row, logits in forward_rows(model, "cls", features, batch_size, device, autocast):
        probs[row] = softmax(logits)
    return np.stack(probs) if probs else np.zeros((0, 0))
