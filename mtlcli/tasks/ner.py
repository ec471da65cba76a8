"""Named-entity recognition: one BIO tag per word, predicted from the word's first sub-token (as run_ner.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import InputError
from ..features import IGNORE, Features
from .base import FeatureSettings, Metric, Task, TaskEvaluation, r4


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


class NerTask(Task):
    name, title, short_title = "ner", "NER", "NER"
    metrics = (
        Metric("precision", "entity precision (micro)"),
        Metric("recall", "entity recall (micro)"),
        Metric("f1", "entity F1 (micro)"),
        Metric("macro_f1", "entity F1 (macro)"),
        Metric("token_accuracy", "token accuracy"),
    )
    primary_metric = "f1"
    headline_metrics = ("f1",)
    per_label = ("per_type", "entity type")
    confusion_of = "token-level entity types"
    augmentable = True
    distillable = True
    per_token = True
    reader = "read_ner"
    prediction_file = "ner_predictions.txt"

    def label_list(self, *example_lists):
        """O first, then B-/I- of every entity type, types sorted."""
        types = sorted({tag[2:] for examples in example_lists for ex in examples for tag in ex.tags if tag != "O"})
        return ["O"] + [f"{prefix}-{t}" for t in types for prefix in ("B", "I")]

    def augment(self, examples, settings, synonyms):
        from ..augment import augment_ner

        return augment_ner(examples, settings, synonyms)

    def featurize(self, examples, tokenizer, settings: FeatureSettings, labels, training):
        label_ids = {label: i for i, label in enumerate(labels)}
        return word_features(examples, tokenizer, label_ids, settings.max_length, settings.ner_context)

    def describe(self, examples, features, split):
        from collections import Counter

        entities = Counter(tag[2:] for ex in examples for tag in ex.tags if tag.startswith("B-"))
        return {"entities": dict(sorted(entities.items())), "split_sentences": len(features) - len(examples)}

    def evaluation_features(self, examples, tokenizer, spec, notes):
        # gold tags the model never saw are still scored (seqeval works on strings); they just get no label id
        label_ids = {label: i for i, label in enumerate(spec.labels_of(self.name))}
        gold_tags = {tag for ex in examples for tag in ex.tags}
        unknown = sorted({tag[2:] for tag in gold_tags - set(label_ids)})
        if unknown:
            notes.append(
                f"NER: gold entity type(s) the model has no label for: {', '.join(unknown)} (scored as misses)"
            )
        label_ids |= {tag: IGNORE for tag in gold_tags if tag not in label_ids}
        return word_features(examples, tokenizer, label_ids, spec.max_length, spec.ner_context)

    # ----------------------------------------------------------------------------------------- model
    def build_head(self, hidden_size, labels, settings):
        from torch import nn

        return nn.Linear(hidden_size, len(labels))

    def head_forward(self, head, hidden, attention_mask, dropout, targets):
        from torch.nn import functional as F

        logits = head(dropout(hidden))
        out = {"logits": logits}
        if "labels" in targets:
            labels = targets["labels"].flatten()
            losses = F.cross_entropy(logits.flatten(0, 1).float(), labels, reduction="none")
            out["loss"] = token_mean(losses[labels != IGNORE], targets)
        return out

    def soft_targets(self, outputs, lengths):
        from ..inference.forward import softmax

        probs = softmax(outputs["logits"])
        return [probs[i, :n] for i, n in enumerate(lengths)]

    def soft_loss(self, out, soft, targets):
        from torch.nn import functional as F

        labelled = targets["labels"] != IGNORE  # the tokens the gold loss is over: each word's first sub-token
        return token_mean(-(soft * F.log_softmax(out["logits"].float(), -1)).sum(-1)[labelled], targets)

    def targets(self, features, rows, width):
        import torch

        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for i, r in enumerate(rows):
            labels[i, : len(features.labels[r])] = torch.tensor(features.labels[r])
        # Each labelled token weighs the same in every batch: a batch of short sentences (length-grouped, where
        # batches are not packed) would otherwise count as much as a batch of long ones.
        return {"labels": labels, "label_tokens": torch.tensor(len(rows) * features.labelled_tokens_per_row)}

    # ----------------------------------------------------------------------------------------- results
    def evaluate(self, model, examples, features, batch_size, device, autocast, options):
        from ..metrics import ner_metrics

        num_words = [len(ex.tokens) for ex in examples]
        decoding = options.get("ner_decoding")
        label_ids, word_scores = decode(model, features, num_words, batch_size, device, autocast, decoding)
        names = model.spec.labels_of(self.name)
        predicted = [[names[i] for i in ids] for ids in label_ids]
        scores = ner_metrics([ex.tags for ex in examples], predicted, strict=options.get("strict", False))
        return TaskEvaluation(self.name, scores, predicted, [s.tolist() for s in word_scores])

    def settings_record(self, options, spec):
        return {
            "mode": "strict" if options.get("strict") else "default",  # seqeval's: strict IOB2, or conlleval's
            "decoding": options.get("ner_decoding") or spec.ner_decoding,
        }

    def prediction_text(self, examples, evaluation):
        """CoNLL columns `token gold pred`, a blank line between sentences: what conlleval reads."""
        blocks = [
            "\n".join(f"{conll_token(t)} {g} {p}" for t, g, p in zip(ex.tokens, ex.tags, pred))
            for ex, pred in zip(examples, evaluation.predictions)
        ]
        return "\n\n".join(blocks) + "\n"

    def worst(self, examples, evaluation, limit):
        """Most entity errors (missed + spurious conlleval chunks) first, then most wrong word tags."""
        from seqeval.metrics.sequence_labeling import get_entities

        rows = []
        for i, (ex, pred) in enumerate(zip(examples, evaluation.predictions)):
            wrong_tags = sum(g != p for g, p in zip(ex.tags, pred))
            if not wrong_tags:
                continue
            gold, guess = set(get_entities(list(ex.tags))), set(get_entities(list(pred)))
            missed = [_entity_dict(ex.tokens, e) for e in sorted(gold - guess, key=lambda e: e[1])]
            spurious = [_entity_dict(ex.tokens, e) for e in sorted(guess - gold, key=lambda e: e[1])]
            rows.append(
                (
                    (-(len(missed) + len(spurious)), -wrong_tags, i),
                    {
                        "id": ex.id,
                        "tokens": list(ex.tokens),
                        "gold": list(ex.tags),
                        "pred": list(pred),
                        "entity_errors": len(missed) + len(spurious),
                        "tag_errors": wrong_tags,
                        "missed": missed,
                        "spurious": spurious,
                    },
                )
            )
        return [row for _, row in sorted(rows, key=lambda row: row[0])[:limit]]

    def predict(
        self,
        model,
        tokenizer,
        inputs,
        batch_size,
        device,
        autocast,
        pretokenized=False,
        decoding=None,
        context_lines=False,
    ):
        """Words, tags and entities per TextItem. With `pretokenized`, words are the space-separated tokens as given;
        `decoding` overrides the model's ner_decoding; `context_lines`: the neighbouring inputs (up to a blank one)
        are each input's document context, as the model's ner_context."""
        from ..data.examples import NerExample
        from .ner_context import line_documents

        texts = [item.text for item in inputs]
        words = [_space_split(text) if pretokenized else split_words(text, tokenizer) for text in texts]
        busy = [i for i, ws in enumerate(words) if ws]  # texts without a word need no forward pass
        context = model.spec.ner_context if context_lines else 0
        if context_lines and not context:
            raise InputError(
                "--context-lines needs a model trained with document context (ner_context=N); this one has none"
            )
        documents = line_documents(texts) if context else [None] * len(texts)
        examples = [NerExample(str(i), [w for w, _ in words[i]], ["O"] * len(words[i]), documents[i]) for i in busy]
        features = word_features(examples, tokenizer, {"O": 0}, model.spec.max_length, context)
        num_words = [len(words[i]) for i in busy]
        label_ids, scores = decode(model, features, num_words, batch_size, device, autocast, decoding)
        per_text = dict(zip(busy, zip(label_ids, scores)))
        names = model.spec.labels_of(self.name)
        results = []
        for i, (text, ws) in enumerate(zip(texts, words)):
            spans = [span for _, span in ws]
            ids, word_scores = per_text.get(i, ((), ()))
            tags = [names[j] for j in ids.tolist()] if len(ids) else []
            word_scores = word_scores.tolist() if len(word_scores) else []
            results.append(NerResult(text, group_entities(text, spans, tags, word_scores), spans, tags, word_scores))
        return results

    def record(self, item, result, **options):
        entities = [
            {"text": e.text, "type": e.type, "start": e.start, "end": e.end, "score": r4(e.score)}
            for e in result.entities
        ]
        return {"text": result.text, "entities": entities}


def token_mean(losses, targets: dict):
    """A batch's loss from its labelled tokens' losses: their sum over the mean labelled tokens of as many training
    rows where the batch carries that count (Ner.targets), else their mean."""
    if "label_tokens" in targets:
        return losses.sum() / targets["label_tokens"]
    return losses.mean()


def decode(model, features, num_words: list[int], batch_size: int, device, autocast, decoding: str | None = None):
    """Per example: (label id per word, probability of that label). Words with no sub-token get O (id 0).

    `decoding` (default: the model's `ner_decoding`): "argmax" takes each word's most likely label; "bio" the
    most likely sequence of labels in which no I-X follows O or another type (`viterbi`)."""
    import numpy as np

    from ..inference.forward import forward_batches, softmax

    num_labels = len(model.spec.labels_of("ner"))
    # per example, the logits of each word's first sub-token; a word without one stays certain O
    word_logits = [np.full((n, num_labels), -np.inf, dtype=np.float32) for n in num_words]
    for logits in word_logits:
        logits[:, 0] = 0.0
    for rows, out, _ in forward_batches(model, "ner", features, batch_size, device, autocast):
        logits = out["logits"]
        words = np.full((len(rows), logits.shape[1]), -1, dtype=np.int64)
        for i, row in enumerate(rows):
            index = features.word_index[row]
            words[i, : len(index)] = index
        batch_rows, positions = np.nonzero(words >= 0)  # first sub-token of each word the row owns
        picked = logits[batch_rows, positions]
        examples = np.asarray([features.example[r] for r in rows])[batch_rows]
        word_ids = words[batch_rows, positions]
        bounds = np.searchsorted(batch_rows, np.arange(len(rows) + 1))  # np.nonzero is row-major: rows are runs
        for i in range(len(rows)):
            a, b = bounds[i], bounds[i + 1]
            if a < b:
                word_logits[examples[a]][word_ids[a:b]] = picked[a:b]
    splits = np.cumsum(num_words)[:-1]
    flat = np.concatenate(word_logits) if word_logits else np.zeros((0, num_labels), dtype=np.float32)
    probs = softmax(flat)
    if (decoding or model.spec.ner_decoding) == "bio":
        from .bio import bio_transitions, viterbi

        allowed = bio_transitions(model.spec.labels_of("ner"))
        log_probs = np.log(np.maximum(probs, np.finfo(np.float32).tiny))
        labels = [viterbi(chunk, allowed) for chunk in np.split(log_probs, splits)]
        best = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    else:
        best = probs.argmax(-1)
    scores = probs[np.arange(len(best)), best]
    return np.split(best, splits), np.split(scores, splits)


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
    return [
        Entity(text[e["start"] : e["end"]], e["type"], e["start"], e["end"], sum(e["scores"]) / len(e["scores"]))
        for e in entities
    ]


def word_features(examples: list, tokenizer, label_ids: dict[str, int], max_length: int, context: int = 0) -> Features:
    """Sentences longer than `max_length` become several windows; each word is labelled in exactly one. With
    `context`, up to that many sub-tokens of the neighbouring sentences of the document on each side, as context."""
    from .ner_context import document_context

    features = Features()
    if not examples:
        return features
    budget = max_length - 2  # [CLS] ... [SEP]
    encoded = tokenizer([ex.tokens for ex in examples], is_split_into_words=True, add_special_tokens=False)
    for index, example in enumerate(examples):
        word_pieces = _pieces_per_word(encoded.word_ids(index), encoded["input_ids"][index], len(example.tokens))
        for start, own_start, end in _word_windows([len(p) for p in word_pieces], budget):
            ids, labels, words = [], [], []
            for word in range(start, end):
                pieces = word_pieces[word][:budget]
                owned = own_start <= word and bool(pieces)
                ids += pieces
                labels += [label_ids[example.tags[word]] if owned else IGNORE] + [IGNORE] * (len(pieces) - 1)
                words += [word if owned else -1] + [-1] * (len(pieces) - 1)
            at_start, at_end, room = start == 0, end == len(example.tokens), budget - len(ids)
            left, right = document_context(encoded["input_ids"], examples, index, at_start, at_end, context, room)
            features.input_ids.append([tokenizer.cls_token_id, *left, *ids, *right, tokenizer.sep_token_id])
            features.labels.append([IGNORE] * (1 + len(left)) + labels + [IGNORE] * (len(right) + 1))
            features.word_index.append([-1] * (1 + len(left)) + words + [-1] * (len(right) + 1))
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


_SPACE = re.compile(r"[ \t\r\n]+")


def conll_token(token: str) -> str:
    """A token safe for a space-separated column file (JSONL tokens may hold spaces): ASCII blanks → '_'."""
    return _SPACE.sub("_", token) or "_"


def _entity_dict(tokens: list[str], entity: tuple[str, int, int]) -> dict:
    kind, first, last = entity
    return {"type": kind, "text": " ".join(tokens[first : last + 1]), "first": first, "last": last}
