"""Predict a task's examples with a model and score them with the standard metrics."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from . import metrics
from .features import Features
from .inference import decode_cls, decode_ner, decode_qa


@dataclass
class TaskEvaluation:
    task: str
    metrics: dict
    predictions: list  # NER: tag list per sentence; QA: best Span per question; cls: label per text
    # NER: probability of each predicted word tag; QA: the n-best Spans per question; cls: probability rows
    detail: list | None = None


def evaluate_task(
    model, task: str, examples: list, features: Features, batch_size: int, device,
    autocast=contextlib.nullcontext, strict: bool = False,
    n_best: int = 20, max_answer_length: int | None = None,
) -> TaskEvaluation:
    """Predict every example (NER: one tag per word, from its first sub-token; QA: the best valid span over
    all windows, from an n-best search; cls: the most probable label) and score with the standard metrics."""
    spec = model.spec
    if task == "ner":
        label_ids, word_scores = decode_ner(model, features, [len(ex.tokens) for ex in examples], batch_size, device, autocast)
        predicted = [[spec.ner_labels[i] for i in ids] for ids in label_ids]
        scores = metrics.ner_metrics([ex.tags for ex in examples], predicted, strict=strict)
        return TaskEvaluation(task, scores, predicted, [s.tolist() for s in word_scores])
    if task == "qa":
        spans = decode_qa(model, features, [ex.context for ex in examples], batch_size, device, autocast,
                          n_best=n_best, max_answer_length=max_answer_length or spec.max_answer_length)
        best = [candidates[0] for candidates in spans]
        scores = metrics.qa_metrics(
            {ex.id: span.text for ex, span in zip(examples, best)},
            {ex.id: [a.text for a in ex.answers] for ex in examples},
        )
        return TaskEvaluation(task, scores, best, spans)
    probabilities = decode_cls(model, features, batch_size, device, autocast)
    predicted = [spec.cls_labels[i] for i in probabilities.argmax(-1)] if len(examples) else []
    scores = metrics.cls_metrics([ex.label for ex in examples], predicted)
    return TaskEvaluation(task, scores, predicted, [row.tolist() for row in probabilities])
