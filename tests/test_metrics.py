"""Tests for mtlcli.metrics: hand-computed cases, plus cross-checks against the references
(seqeval's own scorers, the official SQuAD v1.1 script copied below, sklearn)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mtlcli.metrics import (
    cls_metrics,
    exact_match,
    ner_metrics,
    ner_token_accuracy,
    normalize_answer,
    qa_metrics,
    token_f1,
)

approx = pytest.approx


def no_warnings(fn, *args, **kwargs):
    """Call fn with every warning turned into an error, so a leaked warning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


# ---------------------------------------------------------------------------------------------- NER

# 2 gold entities (PER, LOC); prediction gets PER right and calls the LOC an ORG.
GOLD = [["B-PER", "I-PER", "O", "B-LOC"]]
PRED = [["B-PER", "I-PER", "O", "B-ORG"]]


def test_ner_two_gold_one_right():
    m = no_warnings(ner_metrics, GOLD, PRED)
    # micro: tp 1, predicted 2, gold 2
    assert (m["precision"], m["recall"], m["f1"]) == (0.5, 0.5, 0.5)
    assert m["num_gold_entities"] == 2 and m["num_pred_entities"] == 2 and m["num_sentences"] == 1


def test_ner_per_type_and_macro_differs_from_micro():
    m = ner_metrics(GOLD, PRED)
    assert m["per_type"] == {
        "LOC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "ORG": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
        "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
    }
    # macro = mean over the 3 types seen (PER 1, LOC 0, ORG 0) = 1/3, micro = 1/2
    assert m["macro_precision"] == approx(1 / 3)
    assert m["macro_recall"] == approx(1 / 3)
    assert m["macro_f1"] == approx(1 / 3)
    assert m["f1"] == 0.5


def test_ner_token_accuracy_and_confusion():
    m = ner_metrics(GOLD, PRED)
    assert m["token_accuracy"] == 0.75 == ner_token_accuracy(GOLD, PRED)
    # rows gold, cols pred; gold types PER PER O LOC, pred types PER PER O ORG
    assert m["confusion"] == {
        "labels": ["LOC", "ORG", "PER", "O"],
        "matrix": [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]],
    }


def test_ner_iob1_default_counts_strict_does_not():
    gold = [["B-PER", "I-PER", "O"]]
    pred = [["I-PER", "I-PER", "O"]]  # IOB1-style: entity starts with I-
    default = no_warnings(ner_metrics, gold, pred)
    strict = no_warnings(ner_metrics, gold, pred, strict=True)
    # conlleval semantics: I- after O opens a chunk, so the span (0, 1) PER matches
    assert (default["precision"], default["recall"], default["f1"]) == (1.0, 1.0, 1.0)
    assert default["num_pred_entities"] == 1
    # strict IOB2: an entity must start with B-, so nothing was predicted
    assert (strict["precision"], strict["recall"], strict["f1"]) == (0.0, 0.0, 0.0)
    assert strict["num_pred_entities"] == 0 and strict["num_gold_entities"] == 1
    # token accuracy and the type confusion do not depend on the mode
    assert default["token_accuracy"] == strict["token_accuracy"] == 2 / 3
    assert default["confusion"] == strict["confusion"]


def test_ner_empty_predictions_all_o():
    gold = [["B-PER", "O"], ["B-LOC", "I-LOC"]]
    pred = [["O", "O"], ["O", "O"]]
    for strict in (False, True):
        m = no_warnings(ner_metrics, gold, pred, strict=strict)
        assert m["f1"] == m["precision"] == m["recall"] == m["macro_f1"] == 0.0
        assert m["per_type"]["PER"]["support"] == 1 and m["per_type"]["LOC"]["support"] == 1
        assert m["num_pred_entities"] == 0


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(
    "gold,pred",
    [
        ([["O", "O"]], [["O", "O"]]),  # no gold and no predicted entity
        ([], []),  # no sentences
        ([[], []], [[], []]),  # only empty sentences
    ],
)
def test_ner_nothing_to_score_is_zero(gold, pred, strict):
    # Documented choice: undefined scores are 0.0 (seqeval would give NaN macro + warnings here).
    m = no_warnings(ner_metrics, gold, pred, strict=strict)
    for key in ("precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1"):
        assert m[key] == 0.0
    assert m["per_type"] == {} and m["num_gold_entities"] == m["num_pred_entities"] == 0
    assert m["confusion"]["labels"] == ["O"]


def test_ner_empty_sentence_among_others():
    gold = [[], ["B-PER"], []]
    pred = [[], ["B-PER"], []]
    m = no_warnings(ner_metrics, gold, pred, strict=True)
    assert m["f1"] == 1.0 and m["num_sentences"] == 3 and m["token_accuracy"] == 1.0


def test_ner_entities_do_not_cross_sentences():
    # "I-PER" at the start of sentence 2 must not continue sentence 1's PER.
    m = ner_metrics([["B-PER"], ["I-PER"]], [["B-PER"], ["B-PER"]])
    assert m["num_gold_entities"] == 2 and m["f1"] == 1.0


@pytest.mark.parametrize(
    "gold,pred",
    [([["O"]], [["O"], ["O"]]), ([["O", "O"]], [["O"]])],
)
def test_ner_length_mismatch_raises(gold, pred):
    with pytest.raises(ValueError):
        ner_metrics(gold, pred)
    with pytest.raises(ValueError):
        ner_token_accuracy(gold, pred)


def test_ner_result_is_plain_json():
    m = ner_metrics(GOLD, PRED)
    json.dumps(m, allow_nan=False)
    assert all(type(m[k]) is float for k in ("precision", "macro_f1", "token_accuracy"))
    assert type(m["per_type"]["PER"]["f1"]) is float and type(m["per_type"]["PER"]["support"]) is int


def test_ner_tuples_accepted():
    assert ner_metrics([tuple(GOLD[0])], (tuple(PRED[0]),))["f1"] == 0.5


def _random_tags(rng, n):
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    return [rng.choice(tags) for _ in range(n)]


def test_ner_matches_seqeval_scorers_on_random_sequences():
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    rng = random.Random(1234)
    for _ in range(100):
        lengths = [rng.randint(0, 8) for _ in range(rng.randint(1, 5))]
        gold = [_random_tags(rng, n) for n in lengths]
        pred = [_random_tags(rng, n) if rng.random() < 0.7 else list(g) for n, g in zip(lengths, gold)]
        for strict, kw in ((False, {}), (True, {"mode": "strict", "scheme": IOB2})):
            m = no_warnings(ner_metrics, gold, pred, strict=strict)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if m["num_gold_entities"] + m["num_pred_entities"] == 0:
                    continue  # seqeval has no defined value there (see test above)
                assert m["precision"] == precision_score(gold, pred, **kw)
                assert m["recall"] == recall_score(gold, pred, **kw)
                assert m["f1"] == f1_score(gold, pred, **kw)
                assert m["macro_f1"] == f1_score(gold, pred, average="macro", **kw)
            assert m["num_gold_entities"] == sum(v["support"] for v in m["per_type"].values())


# ----------------------------------------------------------------------------------------------- QA
from squad_official import (  # noqa: E402
    official_evaluate,
    official_exact_match_score,
    official_f1_score,
    official_metric_max_over_ground_truths,
    official_normalize_answer,
)


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("The  Cat!", "cat"),
        ("an apple", "apple"),
        ("a", ""),
        ("A", ""),  # lowercased before articles are removed
        ("U.S.", "us"),
        ("the-cat", "thecat"),  # punctuation goes first, so "the" is glued on and stays
        ("theater an", "theater"),  # \b: only whole-word articles
        ("  \t multiple\n spaces ", "multiple spaces"),
        ("«Paris» — café…", "«paris» — café…"),  # non-ASCII punctuation is not in string.punctuation
        ("", ""),
    ],
)
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected == official_normalize_answer(raw)


def test_em_and_f1_max_over_golds():
    assert exact_match("The Cat.", ["dog", "cat"]) == 1.0
    assert exact_match("big cat", ["cat", "dog"]) == 0.0
    assert token_f1("big cat", ["dog", "big cat", "cat"]) == 1.0
    assert token_f1("big cat", ["dog", "cat"]) == approx(2 / 3)  # P 1/2, R 1 vs "cat"


def test_f1_partial_overlap():
    # "big cat" vs "big dog": 1 common token, P = 1/2, R = 1/2, F1 = 1/2
    assert token_f1("the big cat", ["big dog"]) == 0.5
    # tokens count with multiplicity: "x x y" vs "x y y" share {x: 1, y: 1} = 2, so P = R = 2/3
    assert token_f1("x x y", ["x y y"]) == approx(2 / 3)


def test_f1_of_two_empty_answers_is_zero_like_official_v11():
    # both normalize to "": EM says match, F1 (official v1.1: num_same == 0 -> 0) says 0
    assert exact_match("the", ["a"]) == 1.0
    assert token_f1("the", ["a"]) == 0.0 == official_f1_score("the", "a")


def test_empty_ground_truths_raise():
    with pytest.raises(ValueError):
        exact_match("x", [])
    with pytest.raises(ValueError):
        token_f1("x", [])


def test_qa_metrics_missing_prediction_counts_zero():
    gold = {"q1": ["Paris"], "q2": ["the big dog"], "q3": ["x"]}
    preds = {"q1": "paris.", "q2": "big cat", "extra": "ignored"}
    m = qa_metrics(preds, gold)
    # q1 EM 1 F1 1; q2 EM 0 F1 1/2; q3 missing 0/0
    assert m == {"exact_match": approx(100 / 3), "f1": approx(50.0), "num_questions": 3, "num_predicted": 2}
    assert qa_metrics({}, {}) == {"exact_match": 0.0, "f1": 0.0, "num_questions": 0, "num_predicted": 0}


_PIECES = [
    "a",
    "an",
    "the",
    "A",
    "An",
    "THE",
    "The",
    "cat",
    "dog",
    "big",
    "U.S.",
    "don't",
    "an-apple",
    "theater",
    "another",
    "(the)",
    "«x»",
    "—",
    "café",
    "naïve",
    "x",
    "X",
    "1,000",
    "$5",
    "the.",
    "a!",
]
_SEPARATORS = [" ", "  ", "\t", "\n", ",", ".", "!", "-", "", " , ", "'", '"', "\u00a0", "\u3000"]


def _random_answer(rng):
    n = rng.randint(0, 6)
    return "".join(rng.choice(_PIECES) + rng.choice(_SEPARATORS) for _ in range(n))


def test_squad_functions_match_official_on_random_strings():
    rng = random.Random(20240611)
    dataset, predictions, gold = [], {}, {}
    for i in range(200):
        pred = _random_answer(rng)
        golds = [_random_answer(rng) for _ in range(rng.randint(1, 3))]
        assert normalize_answer(pred) == official_normalize_answer(pred)
        official_em = official_metric_max_over_ground_truths(official_exact_match_score, pred, golds)
        official_f1 = official_metric_max_over_ground_truths(official_f1_score, pred, golds)
        assert exact_match(pred, golds) == float(official_em)
        assert token_f1(pred, golds) == official_f1  # bit-identical, not approx
        qid = f"q{i}"
        gold[qid] = golds
        if rng.random() < 0.9:
            predictions[qid] = pred
        dataset.append({"paragraphs": [{"qas": [{"id": qid, "answers": [{"text": g} for g in golds]}]}]})
    ours = qa_metrics(predictions, gold)
    ref = official_evaluate(dataset, predictions)
    assert ours["exact_match"] == approx(ref["exact_match"], rel=1e-12)
    assert ours["f1"] == approx(ref["f1"], rel=1e-12)
    assert ours["num_predicted"] == len(predictions) < 200 == ours["num_questions"]
    assert 0 < ref["exact_match"] < 100 and 0 < ref["f1"] < 100  # the mix exercises both outcomes


# ----------------------------------------------------------------------------------- classification

CG = ["a", "a", "b", "b", "c"]
CP = ["a", "b", "b", "b", "a"]


def test_cls_hand_computed():
    m = no_warnings(cls_metrics, CG, CP)
    assert m["accuracy"] == 0.6
    # a: tp1 pred2 gold2 -> .5/.5/.5 ; b: tp2 pred3 gold2 -> 2/3, 1, .8 ; c: never predicted -> 0, 0, 0
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_class"]["b"] == {"precision": approx(2 / 3), "recall": 1.0, "f1": approx(0.8), "support": 2}
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}  # 0, not nan
    assert m["macro_precision"] == approx((0.5 + 2 / 3) / 3)
    assert m["macro_recall"] == approx(1.5 / 3)
    assert m["macro_f1"] == approx(1.3 / 3)
    assert m["confusion"] == {"labels": ["a", "b", "c"], "matrix": [[1, 1, 0], [0, 2, 0], [1, 0, 0]]}
    json.dumps(m, allow_nan=False)


def test_cls_matches_sklearn_and_explicit_labels():
    from sklearn.metrics import f1_score, precision_score, recall_score

    labels = ["c", "b", "a", "d"]  # order kept; "d" never occurs but is averaged over, as in sklearn
    m = no_warnings(cls_metrics, CG, CP, labels=labels)
    assert m["confusion"]["labels"] == labels and m["per_class"]["d"]["support"] == 0
    kw = {"labels": labels, "average": "macro", "zero_division": 0}
    assert m["macro_precision"] == precision_score(CG, CP, **kw)
    assert m["macro_recall"] == recall_score(CG, CP, **kw)
    assert m["macro_f1"] == f1_score(CG, CP, **kw)


def test_cls_errors_and_empty():
    with pytest.raises(ValueError):
        cls_metrics(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        cls_metrics(["a", "z"], ["a", "a"], labels=["a", "b"])  # "z" is not a known label
    m = no_warnings(cls_metrics, [], [])
    assert m["accuracy"] == 0.0 and m["macro_f1"] == 0.0 and m["per_class"] == {}


# ------------------------------------------------------------------------------------------- import


def test_import_is_light():
    code = "import sys, mtlcli.metrics; print(sorted(m for m in ('torch', 'seqeval', 'sklearn') if m in sys.modules))"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
