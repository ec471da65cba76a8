"""Predictions on raw input: entities with character offsets, answers with offsets, labels with probabilities."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .data.examples import ClsExample, NerExample, QaExample
from .errors import InputError
from .features import cls_features, ner_features, qa_features
from .inference import Span, decode_cls, decode_ner, decode_qa


@dataclass
class Entity:
    text: str
    type: str
    start: int  # character offsets into the input: input[start:end] == text
    end: int
    score: float  # mean probability of the entity's word tags


def split_words(text: str, tokenizer) -> list[tuple[str, tuple[int, int]]]:
    """Words as the backbone's pre-tokenizer splits them ("California." → "California", "."), offsets into text."""
    pieces = tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(text)
    return [(text[start:end], (start, end)) for _, (start, end) in pieces]


def group_entities(text: str, spans: list[tuple[int, int]], tags: list[str], scores) -> list[Entity]:
    """An entity is a maximal run of B-/I- tags of one type (an I- after O or another type starts one)."""
    entities, current = [], None
    for (start, end), tag, score in zip(spans, tags, scores):
        prefix, _, kind = tag.partition("-")
        if current and prefix == "I" and kind == current["type"]:
            current["end"], current["scores"] = end, current["scores"] + [float(score)]
            continue
        if current:
            entities.append(current)
        current = {"type": kind, "start": start, "end": end, "scores": [float(score)]} if prefix in ("B", "I") else None
    if current:
        entities.append(current)
    return [Entity(text[e["start"]:e["end"]], e["type"], e["start"], e["end"], sum(e["scores"]) / len(e["scores"]))
            for e in entities]


def predict_ner(model, tokenizer, texts: list[str], batch_size: int = 32, device="cpu", pretokenized: bool = False):
    """Entities per text. With `pretokenized`, words are the space-separated tokens as given."""
    words = [_space_split(text) if pretokenized else split_words(text, tokenizer) for text in texts]
    examples = [NerExample(str(i), [w for w, _ in ws], ["O"] * len(ws)) for i, ws in enumerate(words)]
    features = ner_features(examples, tokenizer, {"O": 0}, model.spec.max_length)
    label_ids, scores = decode_ner(model, features, [len(ws) for ws in words], batch_size, device)
    return [
        group_entities(text, [span for _, span in ws], [model.spec.ner_labels[i] for i in ids], word_scores)
        for text, ws, ids, word_scores in zip(texts, words, label_ids, scores)
    ]


def _space_split(text: str) -> list[tuple[str, tuple[int, int]]]:
    import re

    return [(m.group(), m.span()) for m in re.finditer(r"\S+", text)]


def predict_qa(model, tokenizer, questions: list[str], contexts: list[str], batch_size: int = 16, device="cpu",
               n_best: int = 1, max_answer_length: int | None = None):
    """The n best answer spans per (question, context), over every window of the context."""
    for i, (question, context) in enumerate(zip(questions, contexts)):
        if not question.strip() or not context.strip():
            raise InputError(f"item {i + 1}: the {'question' if not question.strip() else 'context'} is empty")
    examples = [QaExample(str(i), q, c) for i, (q, c) in enumerate(zip(questions, contexts))]
    spec = model.spec
    features = qa_features(examples, tokenizer, spec.qa_max_length, spec.doc_stride, training=False)
    spans = decode_qa(model, features, contexts, batch_size, device, n_best=max(n_best, 20),
                      max_answer_length=max_answer_length or spec.max_answer_length)
    return [candidates[:n_best] for candidates in spans]


def predict_cls(model, tokenizer, texts: list[str], batch_size: int = 32, device="cpu") -> list[dict[str, float]]:
    """Probability of every label, most likely first."""
    examples = [ClsExample(str(i), text, "") for i, text in enumerate(texts)]
    probabilities = decode_cls(model, cls_features(examples, tokenizer, {}, model.spec.max_length), batch_size, device)
    labels = model.spec.cls_labels
    return [dict(sorted(zip(labels, map(float, row)), key=lambda kv: -kv[1])) for row in probabilities]


def as_dicts(items) -> list[dict]:
    return [asdict(item) for item in items]
