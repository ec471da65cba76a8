"""BIO-constrained decoding of NER tags: the most likely tag sequence in which no I-X follows O or another type
(a Viterbi search over each word's label log-probabilities), instead of each word's own most likely tag."""

from __future__ import annotations

import numpy as np


def bio_transitions(labels: list[str]):
    """allowed[i, j]: label j may follow label i; the last row is the sentence start. I-X may only follow B-X or
    I-X (an I-X after O or another type would open an entity without its B-)."""
    allowed = np.ones((len(labels) + 1, len(labels)), dtype=bool)
    for j, label in enumerate(labels):
        if label.startswith("I-"):
            kind = label[2:]
            allowed[:, j] = [previous in (f"B-{kind}", f"I-{kind}") for previous in labels] + [False]
    return allowed


def viterbi(log_probs, allowed):
    """The label sequence of highest total log-probability whose every transition `allowed` permits."""
    num_words, num_labels = log_probs.shape
    if not num_words:
        return np.zeros(0, dtype=np.int64)
    penalty = np.where(allowed, 0.0, -np.inf)
    score = log_probs[0] + penalty[num_labels]
    back = np.zeros((num_words, num_labels), dtype=np.int64)
    for t in range(1, num_words):
        total = score[:, None] + penalty[:num_labels]  # previous label × this label
        back[t] = total.argmax(0)
        score = total[back[t], np.arange(num_labels)] + log_probs[t]
    path = [int(score.argmax())]
    for t in range(num_words - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return np.asarray(path[::-1], dtype=np.int64)
