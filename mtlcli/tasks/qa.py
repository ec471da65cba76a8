"""Extractive question answering: start/end logits over windows of the context, as run_qa.py; questions
without an answer (SQuAD 2.0) as its --version_2_with_negative."""

from __future__ import annotations

from ..features import Features
from .base import FeatureSettings, Metric, Task, TaskEvaluation, r4
from .qa_spans import Span, best_answer, decode

# longest question kept, in tokens (as BERT's SQuAD code); longer ones are cut so the context keeps room
MAX_QUESTION_TOKENS = 64
# run_qa.py's null_score_diff_threshold: "" when the null score beats the best span's at all
DEFAULT_NULL_THRESHOLD = 0.0


class QaTask(Task):
    name, title, short_title = "qa", "QA", "QA"
    metrics = (
        Metric("exact_match", "exact match", fraction=False),
        Metric("f1", "F1", fraction=False),
        # files with unanswerable questions (SQuAD 2.0) only
        Metric("has_ans_exact_match", "HasAns exact match", fraction=False),
        Metric("has_ans_f1", "HasAns F1", fraction=False),
        Metric("no_ans_exact_match", "NoAns accuracy", fraction=False),
        Metric("best_exact_match", "best exact match (tuned threshold)", fraction=False),
        Metric("best_f1", "best F1 (tuned threshold)", fraction=False),
    )
    primary_metric = "f1"
    headline_metrics = ("exact_match", "f1")
    reader = "read_qa"
    distillable = True
    prediction_file = "qa_predictions.json"
    output_names = ("start_logits", "end_logits")

    def select(self, examples, config, split):
        """Keep the SQuAD articles in a slice of the file's article order (titles in order of appearance)."""
        from ..config import parse_slice

        articles = config.qa_train_articles if split == "train" else config.qa_valid_articles
        if not articles:
            return examples
        titles = list(dict.fromkeys(ex.title for ex in examples))
        keep = set(titles[parse_slice(articles)])
        return [ex for ex in examples if ex.title in keep]

    def check_scorable(self, path, examples):
        from ..errors import InputError, Problem

        missing = [ex.id for ex in examples if not ex.answers and not ex.impossible]
        if missing:
            raise InputError(
                Problem(
                    path,
                    "",
                    f"{len(missing)} question(s) have no gold answer (first: id {missing[0]});"
                    " evaluation needs at least one answer per question (or is_impossible: true)",
                )
            )

    def featurize(self, examples, tokenizer, settings: FeatureSettings, labels, training):
        return window_features(
            examples, tokenizer, settings.qa_max_length, settings.doc_stride, training, settings.segment_ids
        )

    def describe(self, examples, features, split):
        row = {"windows_per_example": round(len(features) / len(examples), 3)}
        if split == "train":
            found = {features.example[i] for i, start in enumerate(features.start_positions) if start > 0}
            row["answers_lost_to_truncation"] = sum(1 for i, ex in enumerate(examples) if ex.answers and i not in found)
        return row

    def trained_settings(self, examples):
        return {"qa_unanswerable": any(ex.impossible for ex in examples)}

    def build_head(self, hidden_size, labels, settings):
        from torch import nn

        return nn.Linear(hidden_size, 2)

    def head_forward(self, head, hidden, attention_mask, dropout, targets):
        from torch.nn import functional as F

        start_logits, end_logits = head(hidden).float().unbind(-1)
        pad = attention_mask == 0  # padding can never be an answer
        start_logits = start_logits.masked_fill(pad, -1e4)
        end_logits = end_logits.masked_fill(pad, -1e4)
        out = {"start_logits": start_logits, "end_logits": end_logits}
        if "start_positions" in targets:
            out["loss"] = (
                F.cross_entropy(start_logits, targets["start_positions"])
                + F.cross_entropy(end_logits, targets["end_positions"])
            ) / 2
        return out

    def soft_targets(self, outputs, lengths):
        import numpy as np

        from ..inference.forward import softmax

        start, end = softmax(outputs["start_logits"]), softmax(outputs["end_logits"])
        return [np.stack([start[i, :n], end[i, :n]], -1) for i, n in enumerate(lengths)]

    def soft_loss(self, out, soft, targets):
        from torch.nn import functional as F

        start = -(soft[..., 0] * F.log_softmax(out["start_logits"], -1)).sum(-1).mean()
        end = -(soft[..., 1] * F.log_softmax(out["end_logits"], -1)).sum(-1).mean()
        return (start + end) / 2

    def targets(self, features, rows, width):
        import torch

        return {
            "start_positions": torch.tensor([features.start_positions[r] for r in rows]),
            "end_positions": torch.tensor([features.end_positions[r] for r in rows]),
        }

    # ----------------------------------------------------------------------------------------- results
    def evaluate(self, model, examples, features, batch_size, device, autocast, options):
        """The best valid span over all windows, from an n-best search, scored by the official SQuAD formula:
        v2.0's (HasAns, NoAns, best thresholds) when the file has unanswerable questions, else v1.1's."""
        from ..metrics import qa_metrics, qa_v2_metrics

        threshold = threshold_in_force(options.get("null_threshold"), model.spec)
        spans, odds = decode(
            model,
            features,
            [ex.context for ex in examples],
            batch_size,
            device,
            autocast,
            n_best=options.get("n_best", 20),
            max_answer_length=options.get("max_answer_length") or model.spec.max_answer_length,
            null_threshold=threshold,
        )
        best = [candidates[0] for candidates in spans]
        gold = {ex.id: [a.text for a in ex.answers] for ex in examples}
        if any(ex.impossible for ex in examples):
            answers = {ex.id: best_answer(candidates) for ex, candidates in zip(examples, spans)}
            scores = qa_v2_metrics(answers, gold, {ex.id: o for ex, o in zip(examples, odds)}, threshold)
        else:
            scores = qa_metrics({ex.id: span.text for ex, span in zip(examples, best)}, gold)
        return TaskEvaluation(self.name, scores, best, spans)

    def settings_record(self, options, spec):
        record = {
            "n_best": options.get("n_best", 20),
            "max_answer_length": options.get("max_answer_length") or spec.max_answer_length,
        }
        threshold = threshold_in_force(options.get("null_threshold"), spec)
        return record if threshold is None else record | {"null_threshold": threshold}

    def prediction_text(self, examples, evaluation):
        """The official SQuAD prediction file: {question id: answer text}."""
        import json

        answers = {ex.id: span.text for ex, span in zip(examples, evaluation.predictions)}
        return json.dumps(answers, ensure_ascii=False, indent=2) + "\n"

    def worst(self, examples, evaluation, limit):
        """Questions not exactly matched, lowest F1 first."""
        from ..metrics import exact_match, token_f1, v2_exact_match, v2_token_f1

        v2 = any(ex.impossible for ex in examples)  # SQuAD 2.0's scoring
        exact, f1_of = (v2_exact_match, v2_token_f1) if v2 else (exact_match, token_f1)
        rows = []
        for i, (ex, span) in enumerate(zip(examples, evaluation.predictions)):
            golds = [a.text for a in ex.answers]
            if exact(span.text, golds):
                continue
            f1 = f1_of(span.text, golds)
            rows.append(
                (
                    (f1, -span.score, i),
                    {
                        "id": ex.id,
                        "question": ex.question,
                        "context": ex.context,
                        "gold": golds,
                        "pred": span.text,
                        "start": span.start,
                        "end": span.end,
                        "score": span.score,
                        "f1": 100.0 * f1,
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
        n_best=1,
        max_answer_length=None,
        null_threshold=None,
    ):
        """The n best answer spans per QaItem (question, context), over every window of the context; the empty
        answer first where the null score beats the best span's by more than `null_threshold` (by default 0 for
        a model trained with unanswerable questions, never for others)."""
        from ..data.examples import QaExample
        from ..errors import InputError

        for i, item in enumerate(inputs):
            if not item.question.strip() or not item.context.strip():
                raise InputError(f"item {i + 1}: the {'question' if not item.question.strip() else 'context'} is empty")
        examples = [QaExample(str(i), item.question, item.context) for i, item in enumerate(inputs)]
        spec = model.spec
        features = window_features(examples, tokenizer, spec.qa_max_length, spec.doc_stride, False, spec.segment_ids)
        spans, _ = decode(
            model,
            features,
            [item.context for item in inputs],
            batch_size,
            device,
            autocast,
            n_best=max(n_best, 20),
            max_answer_length=max_answer_length or spec.max_answer_length,
            null_threshold=threshold_in_force(null_threshold, spec),
        )
        return [candidates[:n_best] for candidates in spans]

    def record(self, item, result, n_best=1, **options):
        obj = {"question": item.question} | answer_record(result[0])
        if n_best > 1:
            obj["n_best"] = [answer_record(span) for span in result]
        return obj

    def request_model(self):
        from ..serve.schemas import QuestionsRequest

        return QuestionsRequest

    def request_inputs(self, body):
        from ..inputs import QaItem

        items = [QaItem(q.question, q.context, None if q.id is None else str(q.id)) for q in body.questions]
        predict = {"n_best": body.n_best, "max_answer_length": body.max_answer_length}
        return items, predict | {"null_threshold": body.null_threshold}, {"n_best": body.n_best}


def threshold_in_force(given: float | None, spec) -> float | None:
    """The null threshold in force: the one given, else the default for a model trained with unanswerable
    questions; None: every question gets its best span (SQuAD v1.1)."""
    if given is not None:
        return given
    return DEFAULT_NULL_THRESHOLD if getattr(spec, "qa_unanswerable", False) else None


def answer_record(span: Span) -> dict:
    return {"answer": span.text, "start": span.start, "end": span.end, "score": r4(span.score)}


def window_features(
    examples: list, tokenizer, max_length: int, doc_stride: int, training: bool, segment_ids: bool = False
) -> Features:
    """run_qa.py's prepare_train_features / prepare_validation_features in one pass; with `segment_ids`, each
    window keeps the tokenizer's token_type_ids (question 0, context 1), as Hugging Face's QA models get them."""
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
        if segment_ids and "token_type_ids" in encoded:
            features.token_type_ids.append(encoded["token_type_ids"][row])
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


def _answer_tokens(example, offsets: list[tuple[int, int] | None]) -> tuple[int, int]:
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
