"""Evaluation metrics for the three task types: NER, extractive QA, text classification.

Every number is the standard one, computed the way the reference implementation computes it:
  - NER: seqeval (default mode = conlleval semantics; strict = mode='strict', scheme=IOB2);
  - QA: the official SQuAD v1.1 evaluate-v1.1.py, copied function by function, and evaluate-v2.0.py for files
    with unanswerable questions;
  - classification: sklearn.metrics (installed as a dependency of seqeval).
No torch here, and seqeval/sklearn are imported inside the functions, so importing this module is
cheap (the CLI imports it to validate options long before it evaluates anything).
All results are JSON-able: python floats/ints, no numpy scalars, no NaN.
"""

from __future__ import annotations

import math
import re
import string
import warnings
from collections import Counter

# ---------------------------------------------------------------------------------------------- NER


def _tag_type(tag: str) -> str:
    """Entity type of one word-level tag ("B-PER" -> "PER", "O" -> "O"), for the token confusion."""
    return "O" if tag == "O" else tag.split("-", 1)[-1]


def _check_pairs(gold: list[list[str]], pred: list[list[str]]) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} sentences, pred has {len(pred)}")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: gold has {len(g)} tags, pred has {len(p)}")


def ner_token_accuracy(gold: list[list[str]], pred: list[list[str]]) -> float:
    """Fraction of word-level tags that are equal (seqeval.accuracy_score); 0.0 when there are no words."""
    _check_pairs(gold, pred)
    total = sum(len(g) for g in gold)
    correct = sum(a == b for g, p in zip(gold, pred) for a, b in zip(g, p))
    return correct / total if total else 0.0


def _count_entities(seqs: list[list[str]], strict: bool) -> int:
    # The same extractor seqeval scores with, so these counts agree with its supports.
    if strict:
        from seqeval.scheme import IOB2, Entities

        return sum(len(s) for s in Entities(seqs, IOB2, False).entities)
    from seqeval.metrics.sequence_labeling import get_entities

    return len(get_entities(seqs))


def ner_metrics(gold: list[list[str]], pred: list[list[str]], strict: bool = False) -> dict:
    """Entity-level P/R/F1 (micro and macro, per type) plus token accuracy and a type confusion.

    Where a ratio is undefined (no predicted / no gold entities) it is 0.0, as seqeval's
    zero_division=0 gives; with no entities at all on either side every score is 0.0.
    """
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2
    from sklearn.exceptions import UndefinedMetricWarning

    # seqeval insists on list-of-list (tuples raise TypeError).
    gold = [list(s) for s in gold]
    pred = [list(s) for s in pred]
    _check_pairs(gold, pred)

    n_gold, n_pred = _count_entities(gold, strict), _count_entities(pred, strict)
    out: dict = {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "macro_precision": 0.0,
        "macro_recall": 0.0,
        "macro_f1": 0.0,
    }
    per_type: dict = {}
    # With no entity on either side seqeval's macro average is a mean of an empty array (NaN and a
    # RuntimeWarning), and with no sentences it raises TypeError; both cases score 0.0 here.
    if n_gold or n_pred:
        kwargs = {"mode": "strict", "scheme": IOB2} if strict else {}
        with warnings.catch_warnings():
            # zero_division=0 already silences UndefinedMetricWarning; this is a second guard.
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            report = classification_report(gold, pred, output_dict=True, zero_division=0, **kwargs)
        for name, row in report.items():
            scores = {
                "precision": float(row["precision"]),
                "recall": float(row["recall"]),
                "f1": float(row["f1-score"]),
                "support": int(row["support"]),
            }
            if name == "micro avg":
                out.update(precision=scores["precision"], recall=scores["recall"], f1=scores["f1"])
            elif name == "macro avg":
                out.update(macro_precision=scores["precision"], macro_recall=scores["recall"], macro_f1=scores["f1"])
            elif name != "weighted avg":
                per_type[name] = scores

    # Token-level confusion of types (B-/I- stripped): shows which types get mixed up, which the
    # entity-level scores cannot. Rows are gold, columns predicted.
    types = {_tag_type(t) for s in gold + pred for t in s} - {"O"}
    labels = sorted(types) + ["O"]
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, pred):
        for a, b in zip(g, p):
            matrix[index[_tag_type(a)]][index[_tag_type(b)]] += 1

    out.update(
        token_accuracy=ner_token_accuracy(gold, pred),
        per_type=per_type,
        confusion={"labels": labels, "matrix": matrix},
        num_sentences=len(gold),
        num_gold_entities=n_gold,
        num_pred_entities=n_pred,
    )
    return out


# ----------------------------------------------------------------------------------------------- QA
# Copied from the official SQuAD v1.1 evaluate-v1.1.py; only names and return types (float) differ.

_PUNCT = set(string.punctuation)  # ASCII only: e.g. "«" or "—" survive normalization, as officially


def normalize_answer(s: str) -> str:
    """Lowercase, drop ASCII punctuation, drop articles, collapse whitespace (in that order)."""
    text = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _f1_one(prediction: str, ground_truth: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    # Official v1.1 behaviour kept on purpose: no overlap -> 0, and that includes two strings that
    # both normalize to "" (e.g. "the" vs "a"), which EM counts as a match. (v2.0 returns 1 there.)
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _check_golds(ground_truths: list[str]) -> None:
    # The official script would die in max([]); say what is wrong instead.
    if not ground_truths:
        raise ValueError("no ground-truth answers (SQuAD v1.1 metrics need at least one)")


def exact_match(prediction: str, ground_truths: list[str]) -> float:
    """1.0 if the normalized prediction equals any normalized ground truth, else 0.0."""
    _check_golds(ground_truths)
    return float(max(normalize_answer(prediction) == normalize_answer(g) for g in ground_truths))


def token_f1(prediction: str, ground_truths: list[str]) -> float:
    """Bag-of-tokens F1 against the best-matching ground truth."""
    _check_golds(ground_truths)
    return max(_f1_one(prediction, g) for g in ground_truths)


def qa_metrics(predictions: dict[str, str], gold: dict[str, list[str]]) -> dict:
    """SQuAD v1.1 EM and F1 (0-100) over every gold question id.

    A gold id without a prediction scores 0 (as in the official script); predictions for ids not
    in gold are ignored. num_predicted counts the gold ids that have a prediction. No gold -> 0.0.
    """
    em = f1 = 0.0
    answered = 0
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        answered += 1
        em += exact_match(predictions[qid], answers)
        f1 += token_f1(predictions[qid], answers)
    total = len(gold)
    return {
        "exact_match": 100.0 * em / total if total else 0.0,
        "f1": 100.0 * f1 / total if total else 0.0,
        "num_questions": total,
        "num_predicted": answered,
    }


# ------------------------------------------------------------------------------------ QA, SQuAD 2.0
# The official evaluate-v2.0.py: an unanswerable question's only gold answer is "", and F1 against "" is 1 for
# "" (0 otherwise); the no-answer decision is a threshold on each question's "no-answer probability" (here the
# null score's margin over the best span, as run_qa.py's null_odds).


def _v2_golds(ground_truths: list[str]) -> list[str]:
    return [g for g in ground_truths if normalize_answer(g)] or [""]


def _v2_f1_one(prediction: str, ground_truth: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    return _f1_one(prediction, ground_truth)


def v2_exact_match(prediction: str, ground_truths: list[str]) -> float:
    """SQuAD 2.0 exact match; no ground truth (an unanswerable question) means only "" is right."""
    return float(max(normalize_answer(prediction) == normalize_answer(g) for g in _v2_golds(ground_truths)))


def v2_token_f1(prediction: str, ground_truths: list[str]) -> float:
    return max(_v2_f1_one(prediction, g) for g in _v2_golds(ground_truths))


def _best_threshold(
    predictions: dict[str, str], scores: dict[str, float], null_odds: dict[str, float], has_answer: dict[str, bool]
) -> tuple[float, float]:
    """find_best_thresh: start from "" for every question, then answer them in order of growing null odds.
    Where answering nothing is best the official script says 0.0; here it is a threshold that does that (just
    below the lowest odds), so that the threshold given back gives the score."""
    current = best = sum(not has for has in has_answer.values())
    threshold = math.nextafter(min(null_odds.values()), -math.inf)
    for qid in sorted(null_odds, key=lambda k: null_odds[k]):
        if has_answer[qid]:
            current += scores[qid]
        elif predictions[qid]:
            current -= 1
        if current > best:
            best, threshold = current, null_odds[qid]
    return 100.0 * best / len(scores), threshold


def qa_v2_metrics(
    predictions: dict[str, str], gold: dict[str, list[str]], null_odds: dict[str, float], threshold: float | None
) -> dict:
    """SQuAD 2.0 EM and F1 (0-100): overall, HasAns and NoAns, at `threshold`, and at the best thresholds.

    `predictions`: the best non-empty answer per gold question id; `null_odds`: how far the question's no-answer
    score beats that answer's; the answer is "" where null_odds > threshold (None: never). An empty gold list
    is an unanswerable question."""
    missing = [qid for qid in gold if qid not in predictions or qid not in null_odds]
    if missing:
        raise ValueError(f"no prediction for question {missing[0]} (and {len(missing) - 1} more)")
    has_answer = {qid: bool(answers) for qid, answers in gold.items()}
    raw_exact = {qid: v2_exact_match(predictions[qid], answers) for qid, answers in gold.items()}
    raw_f1 = {qid: v2_token_f1(predictions[qid], answers) for qid, answers in gold.items()}

    def at_threshold(raw: dict[str, float]) -> dict[str, float]:
        empty = {qid for qid in gold if threshold is not None and null_odds[qid] > threshold}
        return {qid: float(not has_answer[qid]) if qid in empty else score for qid, score in raw.items()}

    exact, f1 = at_threshold(raw_exact), at_threshold(raw_f1)

    def mean(scores: dict[str, float], ids: list[str]) -> float:
        return 100.0 * sum(scores[qid] for qid in ids) / len(ids) if ids else 0.0

    ids = list(gold)
    with_answer = [qid for qid in ids if has_answer[qid]]
    without = [qid for qid in ids if not has_answer[qid]]
    best_exact, best_exact_threshold = _best_threshold(predictions, raw_exact, null_odds, has_answer) if ids else (0, 0)
    best_f1, best_f1_threshold = _best_threshold(predictions, raw_f1, null_odds, has_answer) if ids else (0, 0)
    return {
        "exact_match": mean(exact, ids),
        "f1": mean(f1, ids),
        "num_questions": len(ids),
        "num_predicted": len(ids),
        "has_ans_exact_match": mean(exact, with_answer),
        "has_ans_f1": mean(f1, with_answer),
        "has_ans_total": len(with_answer),
        "no_ans_exact_match": mean(exact, without),
        "no_ans_f1": mean(f1, without),
        "no_ans_total": len(without),
        "best_exact_match": float(best_exact),
        "best_exact_match_threshold": float(best_exact_threshold),
        "best_f1": float(best_f1),
        "best_f1_threshold": float(best_f1_threshold),
    }


# ----------------------------------------------------------------------------------- classification


def cls_metrics(gold: list[str], pred: list[str], labels: list[str] | None = None) -> dict:
    """Accuracy, macro P/R/F1, per-class scores and confusion (rows gold, columns predicted).

    labels fixes the order and the set averaged over (as sklearn does: a listed label that never
    occurs counts 0 in the macro average); by default it is every label seen, sorted. A label outside
    a given list is an error rather than silently dropped. Undefined ratios are 0.0 (zero_division=0).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    gold, pred = list(gold), list(pred)
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} items, pred has {len(pred)}")
    seen = set(gold) | set(pred)
    if labels is None:
        labels = sorted(seen)
    else:
        labels = list(labels)
        unknown = seen - set(labels)
        if unknown:
            raise ValueError(f"labels not in the label list: {sorted(unknown)}")

    out: dict = {
        "accuracy": 0.0,
        "macro_precision": 0.0,
        "macro_recall": 0.0,
        "macro_f1": 0.0,
        "per_class": {},
        "confusion": {"labels": labels, "matrix": [[0] * len(labels) for _ in labels]},
    }
    if not gold or not labels:  # sklearn rejects empty input; nothing to score
        return out
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, average=None, zero_division=0)
    out.update(
        accuracy=sum(a == b for a, b in zip(gold, pred)) / len(gold),
        # Unweighted mean over `labels`: exactly sklearn's average="macro" with the same labels.
        macro_precision=float(p.mean()),
        macro_recall=float(r.mean()),
        macro_f1=float(f.mean()),
        per_class={
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
        confusion={"labels": labels, "matrix": confusion_matrix(gold, pred, labels=labels).tolist()},
    )
    return out
