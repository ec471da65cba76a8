"""Tokenization into model features: word-label alignment, NER and QA windows, and the feature cache.

Follows Hugging Face's run_ner.py / run_qa.py: labels on the first sub-token of each word (others -100);
QA contexts split into windows of `qa_max_length` tokens overlapping by `doc_stride`, with the offset
mapping kept so that any predicted span maps back to exact characters of the context.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .data.examples import ClsExample, NerExample, QaExample

IGNORE = -100
FEATURES_VERSION = "1"
# longest question kept, in tokens (as BERT's SQuAD code); longer ones are cut so the context keeps room
MAX_QUESTION_TOKENS = 64


@dataclass
class Features:
    """One row per model input. `example` maps a row back to its example (several rows for windows)."""

    input_ids: list[list[int]] = field(default_factory=list)
    example: list[int] = field(default_factory=list)
    # NER: label id per token, and the index of the word whose prediction this token gives (-1: none)
    labels: list[list[int]] = field(default_factory=list)
    word_index: list[list[int]] = field(default_factory=list)
    # QA: gold start/end token (0 = [CLS] when the answer is not in this window), context char offsets
    start_positions: list[int] = field(default_factory=list)
    end_positions: list[int] = field(default_factory=list)
    offsets: list[list[tuple[int, int] | None]] = field(default_factory=list)
    # classification: label id per row
    label: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


def ner_features(examples: list[NerExample], tokenizer, label_ids: dict[str, int], max_length: int) -> Features:
    """Sentences longer than `max_length` become several windows; each word is labelled in exactly one."""
    features = Features()
    if not examples:
        return features
    budget = max_length - 2  # [CLS] ... [SEP]
    encoded = tokenizer([ex.tokens for ex in examples], is_split_into_words=True, add_special_tokens=False)
    for index, example in enumerate(examples):
        word_pieces = _pieces_per_word(encoded.word_ids(index), encoded["input_ids"][index], len(example.tokens))
        for start, own_start, end in _word_windows([len(p) for p in word_pieces], budget):
            ids, labels, words = [tokenizer.cls_token_id], [IGNORE], [-1]
            for word in range(start, end):
                pieces = word_pieces[word][:budget]
                owned = own_start <= word and bool(pieces)
                ids += pieces
                labels += [label_ids[example.tags[word]] if owned else IGNORE] + [IGNORE] * (len(pieces) - 1)
                words += [word if owned else -1] + [-1] * (len(pieces) - 1)
            ids.append(tokenizer.sep_token_id)
            labels.append(IGNORE)
            words.append(-1)
            features.input_ids.append(ids)
            features.labels.append(labels)
            features.word_index.append(words)
            features.example.append(index)
    return features


def _pieces_per_word(word_ids: list[int | None], input_ids: list[int], num_words: int) -> list[list[int]]:
    pieces: list[list[int]] = [[] for _ in range(num_words)]
    for word, token in zip(word_ids, input_ids):
        if word is not None:
            pieces[word].append(token)
    return pieces


def _word_windows(piece_counts: list[int], budget: int) -> list[tuple[int, int, int]]:
    """(start, own_start, end) word ranges whose pieces fit `budget`; words before own_start are left context."""
    windows, own_start, n = [], 0, len(piece_counts)
    context_budget = budget // 4
    while own_start < n or not windows:
        start, context = own_start, 0
        while start > 0 and context + min(piece_counts[start - 1], budget) <= context_budget:
            start -= 1
            context += min(piece_counts[start], budget)
        end, used = own_start, context
        while end < n and used + min(piece_counts[end], budget) <= budget:
            used += min(piece_counts[end], budget)
            end += 1
        if end == own_start and n:  # the next word fills a window alone: drop the context
            start, end = own_start, own_start + 1
        windows.append((start, own_start, end))
        own_start = end
    return windows


def qa_features(examples: list[QaExample], tokenizer, max_length: int, doc_stride: int, training: bool) -> Features:
    """run_qa.py's prepare_train_features / prepare_validation_features in one pass."""
    features = Features()
    if not examples:
        return features
    questions = [_cut_question(ex.question.lstrip(), tokenizer) for ex in examples]
    encoded = tokenizer(
        questions,
        [ex.context for ex in examples],
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    for row, index in enumerate(encoded["overflow_to_sample_mapping"]):
        example = examples[index]
        sequence_ids = encoded.sequence_ids(row)
        offsets = [tuple(o) if s == 1 else None for o, s in zip(encoded["offset_mapping"][row], sequence_ids)]
        features.input_ids.append(encoded["input_ids"][row])
        features.example.append(index)
        features.offsets.append(offsets)
        if training:
            start, end = _answer_tokens(example, offsets)
            features.start_positions.append(start)
            features.end_positions.append(end)
    return features


def _cut_question(question: str, tokenizer) -> str:
    encoded = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    if len(encoded["input_ids"]) <= MAX_QUESTION_TOKENS:
        return question
    return question[: encoded["offset_mapping"][MAX_QUESTION_TOKENS - 1][1]]


def _answer_tokens(example: QaExample, offsets: list[tuple[int, int] | None]) -> tuple[int, int]:
    """Token span of the first gold answer in this window, or (0, 0) — [CLS] — when the window lacks it."""
    if not example.answers:
        return 0, 0
    answer = example.answers[0]
    first_char, last_char = answer.start, answer.start + len(answer.text)
    context_tokens = [i for i, o in enumerate(offsets) if o is not None]
    if not context_tokens:
        return 0, 0
    first, last = context_tokens[0], context_tokens[-1]
    if offsets[first][0] > first_char or offsets[last][1] < last_char:
        return 0, 0
    start = first
    while start <= last and offsets[start][1] <= first_char:
        start += 1
    end = last
    while end >= first and offsets[end][0] >= last_char:
        end -= 1
    return start, end


def cls_features(examples: list[ClsExample], tokenizer, label_ids: dict[str, int], max_length: int) -> Features:
    if not examples:
        return Features()
    encoded = tokenizer([ex.text for ex in examples], truncation=True, max_length=max_length)
    return Features(
        input_ids=encoded["input_ids"],
        example=list(range(len(examples))),
        label=[label_ids.get(ex.label, IGNORE) for ex in examples],
    )


def tokenizer_fingerprint(tokenizer) -> str:
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:16]


def cached(cache_dir: str | Path | None, key_parts: tuple, build):
    """Features keyed by a hash of everything they depend on (examples, tokenizer, lengths, labels)."""
    import torch

    if not cache_dir:
        return build()
    key = hashlib.sha256(repr((FEATURES_VERSION,) + key_parts).encode()).hexdigest()[:24]
    path = Path(cache_dir) / f"features-{key}.pt"
    if path.is_file():
        try:
            return Features(**torch.load(path, weights_only=True))
        except Exception:  # a torn or stale cache file is rebuilt, never trusted
            path.unlink(missing_ok=True)
    features = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    torch.save(vars(features), tmp)
    os.replace(tmp, path)
    return features
