"""Predictions on raw input: entities with character offsets, answers with offsets, labels with probabilities.

`Predictor` loads a model directory once (device, precision, optional int8 quantization) and answers any
number of inputs; the functions below it are the same engine for a model already in memory.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import asdict, dataclass, field

from .data.examples import ClsExample, NerExample, QaExample
from .devices import autocast_for, resolve_device, resolve_precision
from .errors import InputError
from .features import cls_features, ner_features, qa_features
from .inference import Span, decode_cls, decode_ner, decode_qa

__all__ = ["Entity", "NerResult", "Predictor", "Span", "predict_cls", "predict_ner", "predict_qa", "tag_texts"]

TASK_NAMES = {"ner": "NER", "qa": "QA", "cls": "classification"}


@dataclass
class Entity:
    text: str
    type: str
    start: int  # character offsets into the input: input[start:end] == text
    end: int
    score: float  # mean probability of the entity's word tags


@dataclass
class NerResult:
    """One text: its entities, and every word with its tag (for CoNLL output)."""

    text: str
    entities: list[Entity]
    words: list[tuple[int, int]] = field(default_factory=list)  # character spans: text[start:end] is the word
    tags: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


def split_words(text: str, tokenizer) -> list[tuple[str, tuple[int, int]]]:
    """Words as the backbone's pre-tokenizer splits them ("California." → "California", "."), offsets into text.

    Pre-tokenizers that keep the space in front of a word (byte-level BPE: "Ġworld") give offsets that
    include it; they are trimmed, so that a word, and an entity, never starts or ends with whitespace."""
    words = []
    for _, (start, end) in tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(text):
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            words.append((text[start:end], (start, end)))
    return words


def _space_split(text: str) -> list[tuple[str, tuple[int, int]]]:
    return [(m.group(), m.span()) for m in re.finditer(r"\S+", text)]


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


def tag_texts(model, tokenizer, texts: list[str], batch_size: int = 64, device="cpu", pretokenized: bool = False,
              autocast=contextlib.nullcontext) -> list[NerResult]:
    """Words, tags and entities per text. With `pretokenized`, words are the space-separated tokens as given."""
    words = [_space_split(text) if pretokenized else split_words(text, tokenizer) for text in texts]
    busy = [i for i, ws in enumerate(words) if ws]  # texts without a word need no forward pass
    examples = [NerExample(str(i), [w for w, _ in words[i]], ["O"] * len(words[i])) for i in busy]
    features = ner_features(examples, tokenizer, {"O": 0}, model.spec.max_length)
    label_ids, scores = decode_ner(model, features, [len(words[i]) for i in busy], batch_size, device, autocast)
    per_text = dict(zip(busy, zip(label_ids, scores)))
    labels = model.spec.ner_labels
    results = []
    for i, (text, ws) in enumerate(zip(texts, words)):
        spans = [span for _, span in ws]
        ids, word_scores = per_text.get(i, ((), ()))
        tags = [labels[j] for j in ids.tolist()] if len(ids) else []
        word_scores = word_scores.tolist() if len(word_scores) else []
        results.append(NerResult(text, group_entities(text, spans, tags, word_scores), spans, tags, word_scores))
    return results


def predict_ner(model, tokenizer, texts: list[str], batch_size: int = 32, device="cpu", pretokenized: bool = False,
                autocast=contextlib.nullcontext) -> list[list[Entity]]:
    """Entities per text. With `pretokenized`, words are the space-separated tokens as given."""
    return [r.entities for r in tag_texts(model, tokenizer, texts, batch_size, device, pretokenized, autocast)]


def check_qa_inputs(questions: list[str], contexts: list[str]) -> None:
    for i, (question, context) in enumerate(zip(questions, contexts)):
        if not question.strip() or not context.strip():
            raise InputError(f"item {i + 1}: the {'question' if not question.strip() else 'context'} is empty")


def predict_qa(model, tokenizer, questions: list[str], contexts: list[str], batch_size: int = 16, device="cpu",
               n_best: int = 1, max_answer_length: int | None = None, autocast=contextlib.nullcontext) -> list[list[Span]]:
    """The n best answer spans per (question, context), over every window of the context."""
    check_qa_inputs(questions, contexts)
    examples = [QaExample(str(i), q, c) for i, (q, c) in enumerate(zip(questions, contexts))]
    spec = model.spec
    features = qa_features(examples, tokenizer, spec.qa_max_length, spec.doc_stride, training=False)
    spans = decode_qa(model, features, contexts, batch_size, device, autocast, n_best=max(n_best, 20),
                      max_answer_length=max_answer_length or spec.max_answer_length)
    return [candidates[:n_best] for candidates in spans]


def predict_cls(model, tokenizer, texts: list[str], batch_size: int = 32, device="cpu",
                autocast=contextlib.nullcontext) -> list[dict[str, float]]:
    """Probability of every label, most likely first."""
    examples = [ClsExample(str(i), text, "") for i, text in enumerate(texts)]
    features = cls_features(examples, tokenizer, {}, model.spec.max_length)
    probabilities = decode_cls(model, features, batch_size, device, autocast)
    labels = model.spec.cls_labels
    return [dict(sorted(zip(labels, map(float, row)), key=lambda kv: -kv[1])) for row in probabilities]


def as_dicts(items) -> list[dict]:
    return [asdict(item) for item in items]


# --- a loaded model: device, precision, quantization -------------------------------------------------------


def quantize_int8(model):
    """Dynamic int8 quantization of the encoder's Linear layers, per output channel (the heads stay fp32)."""
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # deprecated in favour of torchao, which is not a dependency
        warnings.simplefilter("ignore")
        model.encoder = quantize_dynamic(model.encoder, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    return model


class Predictor:
    """A model directory loaded once, answering any number of inputs in length-sorted batches.

    Batch-invariant by default (mtlcli.invariant): the results are bitwise the same with any batch size.
    Default batch sizes: 128 texts for NER and classification, 32 windows for QA."""

    def __init__(self, directory, device: str = "auto", precision: str = "auto", quantize: bool = False,
                 batch_size: int | None = None, batch_invariant: bool = True, block_rows: int | None = None):
        from .invariant import BLOCK_ROWS, prepare_for_inference
        from .model import load_model

        self.device = resolve_device(device)
        if quantize and self.device != "cpu":
            raise InputError("--quantize (dynamic int8) runs on the CPU only: add --device cpu")
        self.precision = resolve_precision(precision, self.device, quantize)
        self.quantized = quantize
        self.model, self.tokenizer = load_model(directory, self.device)
        if quantize:
            quantize_int8(self.model)
        # bitwise the same results with any batch size (with --quantize: the activation scales stay per batch)
        prepare_for_inference(self.model, batch_invariant, block_rows or BLOCK_ROWS)
        self.batch_invariant = batch_invariant
        self.autocast = autocast_for(self.device, self.precision)
        self.batch_size = batch_size
        self.spec = self.model.spec

    @property
    def tasks(self) -> list[str]:
        return list(self.spec.tasks)

    def require(self, task: str) -> None:
        if task not in self.spec.tasks:
            have = ", ".join(TASK_NAMES[t] for t in self.spec.tasks) or "none"
            raise InputError(f"this model has no {TASK_NAMES[task]} head (its tasks: {have})")

    def ner(self, texts: list[str], pretokenized: bool = False) -> list[NerResult]:
        self.require("ner")
        return tag_texts(self.model, self.tokenizer, texts, self.batch_size or 128, self.device, pretokenized,
                         self.autocast)

    def qa(self, questions: list[str], contexts: list[str], n_best: int = 1,
           max_answer_length: int | None = None) -> list[list[Span]]:
        self.require("qa")
        return predict_qa(self.model, self.tokenizer, questions, contexts, self.batch_size or 32, self.device,
                          n_best, max_answer_length, self.autocast)

    def cls(self, texts: list[str]) -> list[dict[str, float]]:
        self.require("cls")
        return predict_cls(self.model, self.tokenizer, texts, self.batch_size or 128, self.device, self.autocast)
