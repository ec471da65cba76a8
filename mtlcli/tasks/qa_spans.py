"""QA answers from start/end logits: run_qa.py's post-processing, the n best spans over every window of a
context, and, with a null threshold, its no-answer decision (`--version_2_with_negative`): the answer is ""
when the null score ([CLS] start + end logit, the lowest over the windows) beats the best span's score by more
than the threshold."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Span:
    text: str
    start: int  # character offsets into the context
    end: int
    score: float  # probability among the n-best candidates (and the empty answer, with a null threshold)


def decode(
    model,
    features,
    contexts: list[str],
    batch_size: int,
    device,
    autocast,
    n_best: int = 20,
    max_answer_length: int = 30,
    null_threshold: float | None = None,
) -> tuple[list[list[Span]], list[float]]:
    """The n best valid spans of each example, best first, and each example's null odds (null score minus the
    best span's score; inf without a valid span).

    A span's score is start logit + end logit; the same character span seen from two windows keeps its best
    score; the probabilities are a softmax over the candidates. Without a null threshold the candidates are the
    n best spans (SQuAD v1.1); with one, the empty answer is a candidate too, and first when its odds exceed it."""
    import numpy as np

    from ..inference.forward import forward_batches

    found: list[list[np.ndarray]] = [[] for _ in contexts]  # per example: rows of (score, start char, end char)
    null_scores = [math.inf] * len(contexts)
    for rows, out, lengths in forward_batches(model, "qa", features, batch_size, device, autocast):
        for i, row in enumerate(rows):
            start_logits, end_logits = out["start_logits"][i, : lengths[i]], out["end_logits"][i, : lengths[i]]
            example = features.example[row]
            null_scores[example] = min(null_scores[example], float(start_logits[0]) + float(end_logits[0]))
            candidates = _window_candidates(start_logits, end_logits, features.offsets[row], n_best, max_answer_length)
            if candidates is not None:
                found[example].append(candidates)
    results, odds = [], []
    for context, parts, null_score in zip(contexts, found, null_scores):
        table = _best_spans(parts, n_best) if parts else None
        odds.append(null_score - table[0, 0] if table is not None else math.inf)
        results.append(_answers(context, table, null_score, odds[-1], null_threshold))
    return results, odds


def _best_spans(parts: list, n_best: int):
    """The n best distinct (start, end) character spans over the windows, best score first."""
    import numpy as np

    table = np.concatenate(parts)
    # best score first; ties keep the earlier span; then one entry per distinct (start, end)
    table = table[np.lexsort((table[:, 1], -table[:, 0]))]
    _, first = np.unique(table[:, 1:], axis=0, return_index=True)
    return table[np.sort(first)][:n_best]


def _answers(context: str, table, null_score: float, odds: float, null_threshold: float | None) -> list[Span]:
    import numpy as np

    from ..inference.forward import softmax

    if null_threshold is None:
        if table is None:
            return [Span("", 0, 0, 0.0)]
        probs = softmax(table[:, 0])
        return [Span(context[int(s) : int(e)], int(s), int(e), float(p)) for (_, s, e), p in zip(table, probs)]
    rows = np.array([[null_score, 0.0, 0.0]]) if table is None else np.vstack([table, [null_score, 0.0, 0.0]])
    probs = softmax(rows[:, 0])
    spans = [Span(context[int(s) : int(e)], int(s), int(e), float(p)) for (_, s, e), p in zip(rows, probs)]
    empty = spans.pop()
    chosen = empty if odds > null_threshold else spans[0]
    others = sorted((span for span in spans + [empty] if span is not chosen), key=lambda span: -span.score)
    return [chosen, *others]


def best_answer(spans: list[Span]) -> str:
    """The best non-empty answer among the candidates ("" when there is none)."""
    return next((span.text for span in spans if span.text), "")


def _window_candidates(start_logits, end_logits, offsets, n_best: int, max_answer_length: int):
    """(score, start char, end char) of the valid spans among the window's n best starts × n best ends."""
    import numpy as np

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
