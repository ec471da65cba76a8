"""Predict a task's examples with a model and score them with the standard metrics."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from . import metrics
from .features import Features
from .inference import decode_cls, decode_ner, decode_qa
from .metrics import PRIMARY_METRIC


@dataclass
class TaskEvaluation:
    task: str
    metrics: dict
    predictions: list  # NER: tag list per sentence; QA: best Span per question; cls: label per text


def evaluate_task(
    model, task: str, examples: list, features: Features, batch_size: int, device,
    autocast=contextlib.nullcontext, strict: bool = False,
) -> TaskEvaluation:
    spec = model.spec
    if task == "ner":
        label_ids, _ = decode_ner(model, features, [len(ex.tokens) for ex in examples], batch_size, device, autocast)
        predicted = [[spec.ner_labels[i] for i in ids] for ids in label_ids]
        scores = metrics.ner_metrics([ex.tags for ex in examples], predicted, strict=strict)
        return TaskEvaluation(task, scores, predicted)
    if task == "qa":
        spans = decode_qa(model, features, [ex.context for ex in examples], batch_size, device, autocast,
                          max_answer_length=spec.max_answer_length)
        best = [candidates[0] for candidates in spans]
        scores = metrics.qa_metrics(
            {ex.id: span.text for ex, span in zip(examples, best)},
            {ex.id: [a.text for a in ex.answers] for ex in examples},
        )
        return TaskEvaluation(task, scores, best)
    probabilities = decode_cls(model, features, batch_size, device, autocast)
    predicted = [spec.cls_labels[i] for i in probabilities.argmax(-1)] if len(examples) else []
    scores = metrics.cls_metrics([ex.label for ex in examples], predicted)
    return TaskEvaluation(task, scores, predicted)
