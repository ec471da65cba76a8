"""Questions without an answer (SQuAD 2.0): reading is_impossible, [CLS] targets, the null-threshold decision,
the official v2.0 metrics, and SQuAD v1.1 files and models as before."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mtlcli.cli.main import app
from mtlcli.data.readers import read_qa
from mtlcli.errors import InputError
from mtlcli.features import Features
from mtlcli.metrics import qa_v2_metrics
from mtlcli.tasks.qa import window_features
from mtlcli.tasks.qa_spans import decode

V1_KEYS = {"file", "examples", "n_best", "max_answer_length", "exact_match", "f1", "num_questions", "num_predicted"}


def v2_file(path, qa_file):
    """The fixture's SQuAD v1.1 file with every second question asked of another article's context, unanswerable."""
    data = json.loads(qa_file.read_text())["data"]
    for i, article in enumerate(data):
        if i % 2:
            qa = article["paragraphs"][0]["qas"][0]
            article["paragraphs"][0]["context"] = data[i - 1]["paragraphs"][0]["context"]
            qa.update(answers=[], is_impossible=True, plausible_answers=qa["answers"])
    path.write_text(json.dumps({"version": "v2.0", "data": data}), encoding="utf-8")
    return path


def test_is_impossible_questions_are_read_as_unanswerable(tmp_path, qa_file):
    examples = read_qa(v2_file(tmp_path / "v2.json", qa_file)).examples
    assert [ex.impossible for ex in examples] == [False, True] * 4
    assert all(not ex.answers for ex in examples if ex.impossible)  # plausible_answers are not gold
    assert not any(ex.impossible for ex in read_qa(qa_file).examples)
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "data": [
                    {"paragraphs": [{"context": "c", "qas": [{"id": "x", "question": "q", "is_impossible": "yes"}]}]}
                ]
            }
        )
    )
    with pytest.raises(InputError, match=r"data\[0\].paragraphs\[0\].qas\[0\].*'is_impossible' must be true/false"):
        read_qa(bad)


def test_unanswerable_questions_point_every_window_at_cls(tmp_path, qa_file, backbone_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbone_dir)
    examples = read_qa(v2_file(tmp_path / "v2.json", qa_file)).examples
    features = window_features(examples, tokenizer, 40, 8, training=True)
    for row, index in enumerate(features.example):
        if examples[index].impossible:
            assert (features.start_positions[row], features.end_positions[row]) == (0, 0)
            assert features.input_ids[row][0] == tokenizer.cls_token_id
    answered = [row for row, i in enumerate(features.example) if not examples[i].impossible]
    assert any(features.start_positions[row] > 0 for row in answered)


def test_answerable_questions_get_the_same_targets_in_a_v2_file_as_in_a_v1_file(tmp_path, backbone_dir):
    """Training targets: with unanswerable questions in the file, every answerable one keeps its v1.1 windows and
    targets (the answer's tokens where the window holds it, [CLS] where not); the unanswerable ones add windows
    at [CLS] only."""
    from conftest import QA_PAIRS
    from transformers import AutoTokenizer

    # one long context of every fixture sentence, so that each question has windows without its answer
    context = " ".join(c for c, _, _ in QA_PAIRS)
    starts = [context.index(c) + c.index(a) for c, _, a in QA_PAIRS]
    answerable = [
        {"id": f"q{i}", "question": q, "answers": [{"text": a, "answer_start": s}]}
        for i, ((_, q, a), s) in enumerate(zip(QA_PAIRS, starts))
    ]
    unanswerable = [
        {"id": f"n{i}", "question": q, "answers": [], "is_impossible": True}
        for i, q in enumerate(["Who founded Amazon?", "Where is Berlin?"])
    ]
    files = {}
    for name, qas in (("v1", answerable), ("v2", [*unanswerable[:1], *answerable, *unanswerable[1:]])):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}))
    tokenizer = AutoTokenizer.from_pretrained(backbone_dir)

    def rows(path):
        examples = read_qa(path).examples
        features = window_features(examples, tokenizer, 40, 8, training=True)
        return [
            (examples[i], ids, start, end, offsets)
            for i, ids, start, end, offsets in zip(
                features.example, features.input_ids, features.start_positions, features.end_positions, features.offsets
            )
        ]

    v1, v2 = rows(files["v1"]), rows(files["v2"])
    assert not any(ex.impossible for ex, *_ in v1)
    assert [(ex.id, ids, s, e) for ex, ids, s, e, _ in v2 if not ex.impossible] == [
        (ex.id, ids, s, e) for ex, ids, s, e, _ in v1
    ]
    assert {(s, e) for ex, _, s, e, _ in v2 if ex.impossible} == {(0, 0)}
    for ex, _, start, end, offsets in v1:
        answer = ex.answers[0]
        inside = [o for o in offsets if o is not None]
        if inside[0][0] <= answer.start and answer.start + len(answer.text) <= inside[-1][1]:
            assert context[offsets[start][0] : offsets[end][1]] == answer.text
        else:
            assert (start, end) == (0, 0)
    windows = {ex.id: [] for ex, *_ in v1}
    for ex, _, start, _, _ in v1:
        windows[ex.id].append(start > 0)
    # every question has its answer in some window and windows without it
    assert all(any(found) and not all(found) for found in windows.values())


class Logits:
    """A stand-in model with fixed start/end logits per feature row (the numpy path of forward_batches)."""

    runs_numpy, pad_id = True, 0

    def __init__(self, start, end):
        self.start, self.end = np.array(start, dtype=np.float32), np.array(end, dtype=np.float32)

    def batch_plan(self, lengths, batch_size):
        return [(list(range(len(lengths))), max(lengths))]

    def run(self, task, input_ids, attention_mask, token_type_ids):
        return {"start_logits": self.start, "end_logits": self.end}


def answers(model, features, threshold):
    spans, odds = decode(model, features, ["Paris is big"], 8, "cpu", None, null_threshold=threshold)
    return spans[0], odds[0]


def test_the_empty_answer_wins_when_the_null_score_beats_the_best_span_by_more_than_the_threshold():
    # one context "Paris is big" in two windows: [CLS] Paris is [SEP] and [CLS] is big [SEP]
    features = Features(
        input_ids=[[1, 2, 3, 4], [1, 3, 5, 4]],
        example=[0, 0],
        offsets=[[None, (0, 5), (6, 8), None], [None, (6, 8), (9, 12), None]],
    )
    # best span "Paris" scores 3 + 3 = 6; the null score is the lowest over the windows: 4 + 4 = 8
    model = Logits([[5, 3, 0, 0], [4, 0, 1, 0]], [[5, 3, 0, 0], [4, 0, 1, 0]])
    spans, odds = answers(model, features, None)
    assert odds == 2.0 and spans[0].text == "Paris"  # SQuAD v1.1: no empty answer, whatever the null score
    assert sum(span.score for span in spans) == pytest.approx(1.0) and all(span.text for span in spans)
    spans, _ = answers(model, features, 0.0)
    assert (spans[0].text, spans[0].start, spans[0].end) == ("", 0, 0)
    # spans "Paris" 6, "Paris is" 3, "big" 2, "is big" 1, "is" 0 (seen twice, kept once), and the null score 8
    assert spans[0].score == pytest.approx(np.exp(8) / np.exp([8, 6, 3, 2, 1, 0]).sum())
    assert spans[1].text == "Paris" and sum(span.score for span in spans) == pytest.approx(1.0)
    spans, _ = answers(model, features, 2.0)  # not more than the threshold: the span stays
    assert spans[0].text == "Paris" and "" in [span.text for span in spans]


def test_v2_metrics_of_a_hand_computed_case():
    gold = {"q1": ["Paris"], "q2": ["the Eiffel Tower"], "q3": [], "q4": []}
    best_spans = {"q1": "Paris", "q2": "Eiffel", "q3": "France", "q4": "Seattle"}
    odds = {"q1": -2.0, "q2": 1.0, "q3": 0.5, "q4": -1.0}
    scores = qa_v2_metrics(best_spans, gold, odds, 0.0)
    # at 0: q2 and q3 get "" (odds above 0): q1 right, q2 wrong, q3 right (no answer), q4 wrong
    assert scores["exact_match"] == scores["f1"] == 50.0
    assert (scores["has_ans_exact_match"], scores["has_ans_f1"], scores["has_ans_total"]) == (50.0, 50.0, 2)
    assert (scores["no_ans_exact_match"], scores["no_ans_f1"], scores["no_ans_total"]) == (50.0, 50.0, 2)
    # find_best_thresh: from "" everywhere (2 right), answer q1 (+1 = 3, at -2), q4 (-1), q3 (-1), q2 (+2/3 F1)
    assert (scores["best_exact_match"], scores["best_exact_match_threshold"]) == (75.0, -2.0)
    assert (scores["best_f1"], scores["best_f1_threshold"]) == (75.0, -2.0)
    nothing = qa_v2_metrics({"q3": "France"}, {"q3": []}, {"q3": 0.5}, None)
    # best when nothing is answered: a threshold below every odds (the official script says 0.0, which answers)
    assert nothing["best_exact_match"] == 100.0 and nothing["best_exact_match_threshold"] < 0.5
    never = qa_v2_metrics(best_spans, gold, odds, None)  # a model that always answers
    assert never["exact_match"] == 25.0 and never["f1"] == pytest.approx(100 * (1 + 2 / 3) / 4)
    assert never["no_ans_exact_match"] == 0.0


@pytest.fixture(scope="module")
def models(tmp_path_factory, backbone_dir):
    """Tiny models trained 2 epochs on the fixture's questions: as SQuAD v1.1, and with half made unanswerable."""
    from conftest import write_qa_file

    from mtlcli.config import resolve
    from mtlcli.training.trainer import train

    root = tmp_path_factory.mktemp("v2")
    v1 = write_qa_file(root / "v1.json")
    v2 = v2_file(root / "v2.json", v1)
    dirs = {}
    for name, path in (("v1", v1), ("v2", v2)):
        settings = [
            f'backbone="{backbone_dir}"',
            f'output_dir="{root / name}"',
            'cache_dir=""',
            "precision=fp32",
            "batch_size=4",
            "qa_max_length=64",
            "doc_stride=16",
            "epochs=2",
            f'qa_train="{path}"',
        ]
        train(resolve([], settings))
        dirs[name] = root / name / "last"
    return dirs | {"v1_file": v1, "v2_file": v2}


def cli(*args):
    result = CliRunner().invoke(app, list(map(str, args)))
    assert result.exit_code == 0, result.output
    return result


def test_evaluate_reports_has_ans_no_ans_and_the_best_threshold(models, tmp_path):
    from mtlcli.spec import read_spec

    assert read_spec(models["v2"]).qa_unanswerable and not read_spec(models["v1"]).qa_unanswerable
    metrics = json.loads(cli("evaluate", models["v2"], "--qa", models["v2_file"], "--json").stdout)["qa"]
    assert (metrics["has_ans_total"], metrics["no_ans_total"], metrics["null_threshold"]) == (4, 4, 0.0)
    assert metrics["best_f1"] >= metrics["f1"] and "best_f1_threshold" in metrics
    # at the best threshold the scores are the best ones
    at_best = cli(
        "evaluate",
        models["v2"],
        "--qa",
        models["v2_file"],
        "--null-threshold",
        metrics["best_exact_match_threshold"],
        "--json",
        "--out",
        tmp_path / "out",
    )
    assert json.loads(at_best.stdout)["qa"]["exact_match"] == metrics["best_exact_match"]
    predictions = json.loads((tmp_path / "out" / "qa_predictions.json").read_text())
    assert len(predictions) == 8 and "best null threshold" in at_best.stderr
    # an unlimited threshold answers every question; a very low one none
    assert (
        json.loads(cli("evaluate", models["v2"], "--qa", models["v2_file"], "--null-threshold", 1e9, "--json").stdout)[
            "qa"
        ]["no_ans_exact_match"]
        == 0.0
    )
    assert (
        json.loads(cli("evaluate", models["v2"], "--qa", models["v2_file"], "--null-threshold", -1e9, "--json").stdout)[
            "qa"
        ]["has_ans_exact_match"]
        == 0.0
    )


def test_predict_qa_answers_empty_with_its_score_below_the_threshold(models):
    line = json.dumps({"context": "Paris is in France.", "question": "Who founded Apple?"})
    never = json.loads(
        CliRunner().invoke(app, ["predict-qa", str(models["v2"]), "--null-threshold", "1e9"], input=line + "\n").stdout
    )
    always = json.loads(
        CliRunner()
        .invoke(app, ["predict-qa", str(models["v2"]), "--null-threshold", "-1e9", "--n-best", "2"], input=line + "\n")
        .stdout
    )
    assert never["answer"] and (always["answer"], always["start"], always["end"]) == ("", 0, 0)
    assert 0 < always["score"] < 1 and always["n_best"][1]["answer"]


def test_a_squad_v1_model_and_file_behave_as_before(models):
    from mtlcli.inference.predictor import Predictor
    from mtlcli.inputs import QaItem

    metrics = json.loads(cli("evaluate", models["v1"], "--qa", models["v1_file"], "--json").stdout)["qa"]
    assert set(metrics) == V1_KEYS
    spans = Predictor(models["v1"], device="cpu", precision="fp32").predict(
        "qa", [QaItem("Who founded Apple?", "Paris is in France.")], n_best=20, max_answer_length=30
    )[0]
    assert all(span.text for span in spans) and sum(s.score for s in spans) == pytest.approx(1.0)
    # a v1.1 file scored by a model that learnt unanswerable questions: the same metrics keys and threshold
    v2_model = json.loads(cli("evaluate", models["v2"], "--qa", models["v1_file"], "--json").stdout)["qa"]
    assert set(v2_model) == V1_KEYS | {"null_threshold"}


def test_the_python_api_takes_a_null_threshold_as_predict_qa_does(models):
    import mtlcli.api as mtl
    from mtlcli.inference.predictor import Predictor

    question, context = "Who founded Apple?", "Paris is in France."
    model = mtl.load(models["v2"])
    assert model.answer(question, context, null_threshold=1e9)[0].text
    abstained = model.answer(question, context, n_best=2, null_threshold=-1e9)
    assert (abstained[0].text, abstained[0].start, abstained[0].end) == ("", 0, 0) and abstained[1].text
    predictor = Predictor(models["v2"], device="cpu", precision="fp32")
    assert [s.text for s in predictor.qa([question] * 2, [context] * 2, null_threshold=-1e9)[0]] == [""]
    assert predictor.qa([question], [context], null_threshold=1e9)[0][0].text
