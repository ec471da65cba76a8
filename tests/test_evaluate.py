"""`mtl evaluate`: the prediction files, re-read by independent parsers, give the scores in metrics.json;
clean --json; one-line errors; the validation suite; atomic output."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from conftest import NER_SENTENCES, QA_PAIRS
from squad_official import official_evaluate
from typer.testing import CliRunner

from mtlcli.cli.main import app

runner = CliRunner()

# the tiny model is trained on PER/ORG/LOC only; the evaluation file adds a MISC entity it has no label for
EXTRA_NER = (["The", "Olympics", "came", "to", "Paris"], ["O", "B-MISC", "O", "O", "B-LOC"])


def run(*args):
    return runner.invoke(app, list(map(str, args)))


@pytest.fixture(scope="module")
def trained(backbone_dir, tmp_path_factory):
    """A tiny NER + QA + classification model inside its run directory (with metrics.jsonl), and labelled
    evaluation files. Six epochs leave it partly right (entity F1 about 0.5-0.8), so the scores compared below
    count hits, misses and false alarms, not 0 = 0."""
    import mtlcli.api as mtl

    root = tmp_path_factory.mktemp("evaluate")
    sentences = NER_SENTENCES + [EXTRA_NER]
    ner = root / "ner.conll"
    ner.write_text("\n\n".join("\n".join(f"{t} {g}" for t, g in zip(*s)) for s in sentences) + "\n", encoding="utf-8")
    train_ner = root / "train.conll"
    train_ner.write_text("\n\n".join("\n".join(f"{t} {g}" for t, g in zip(*s)) for s in NER_SENTENCES) + "\n")
    qa = root / "qa.json"
    qa.write_text(
        json.dumps(
            {
                "version": "1.1",
                "data": [
                    {
                        "title": f"a{i}",
                        "paragraphs": [
                            {
                                "context": c,
                                "qas": [
                                    {"id": f"q{i}", "question": q, "answers": [{"text": a, "answer_start": c.index(a)}]}
                                ],
                            }
                        ],
                    }
                    for i, (c, q, a) in enumerate(QA_PAIRS)
                ],
            }
        ),
        encoding="utf-8",
    )
    cls = root / "cls.csv"
    cls.write_text(
        "text,label\n"
        + "".join(f'"{" ".join(t)}",{"person" if "B-PER" in g else "other"}\n' for t, g in NER_SENTENCES),
        encoding="utf-8",
    )
    run_dir = root / "run"
    mtl.train(
        backbone=str(backbone_dir),
        ner_train=str(train_ner),
        ner_valid=str(train_ner),
        qa_train=str(qa),
        qa_valid=str(qa),
        cls_train=str(cls),
        epochs=6,
        lr=2e-3,
        batch_size=4,
        output_dir=str(run_dir),
        cache_dir="",
        max_length=32,
        qa_max_length=48,
        doc_stride=16,
        precision="fp32",
        warmup_ratio=0.0,
    )
    return {"model": run_dir / "last", "ner": ner, "qa": qa, "cls": cls, "root": root}


# ------------------------------------------------------------------------ independent re-scoring


def read_conll_predictions(path):
    """token gold pred per line, blank line between sentences — parsed without mtlcli."""
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
            continue
        columns = line.split(" ")
        assert len(columns) == 3, line
        current.append(columns)
    if current:
        sentences.append(current)
    return sentences


def test_prediction_files_rescore_to_metrics_json(trained, tmp_path):
    from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
    from sklearn.metrics import f1_score as sk_f1

    out = tmp_path / "eval"
    result = run(
        "evaluate",
        trained["model"],
        "--ner",
        trained["ner"],
        "--qa",
        trained["qa"],
        "--cls",
        trained["cls"],
        "--out",
        out,
        "--json",
        "--show-errors",
        "3",
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(result.stdout.splitlines()) == 1  # --json: one clean object on stdout ...
    assert json.loads(result.stdout) == metrics  # ... exactly what metrics.json holds

    # NER: the CoNLL file, parsed by hand and scored by seqeval directly
    sentences = read_conll_predictions(out / "ner_predictions.txt")
    gold = [[g for _, g, _ in s] for s in sentences]
    pred = [[p for _, _, p in s] for s in sentences]
    assert [[t for t, _, _ in s] for s in sentences] == [t for t, _ in NER_SENTENCES + [EXTRA_NER]]
    assert gold == [g for _, g in NER_SENTENCES + [EXTRA_NER]]
    ner = metrics["ner"]
    assert ner["num_pred_entities"] >= 5 and 0 < ner["f1"] < 1  # real entities to score, not 0 = 0
    assert ner["f1"] == pytest.approx(f1_score(gold, pred), abs=1e-12)
    assert ner["precision"] == pytest.approx(precision_score(gold, pred), abs=1e-12)
    assert ner["recall"] == pytest.approx(recall_score(gold, pred), abs=1e-12)
    assert ner["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro"), abs=1e-12)
    assert ner["token_accuracy"] == pytest.approx(accuracy_score(gold, pred), abs=1e-12)
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    assert set(ner["per_type"]) == {"LOC", "MISC", "ORG", "PER"}  # MISC scored although the model lacks it
    for kind, row in ner["per_type"].items():
        assert (
            row["f1"] == pytest.approx(report[kind]["f1-score"], abs=1e-12)
            and row["support"] == report[kind]["support"]
        )
    assert all(p != "B-MISC" for s in pred for p in s)  # ... and cannot predict it
    assert sum(map(sum, ner["confusion"]["matrix"])) == sum(map(len, gold))

    # QA: the official {id: answer} file scored by the official formula
    predictions = json.loads((out / "qa_predictions.json").read_text())
    dataset = json.loads(trained["qa"].read_text())["data"]
    assert set(predictions) == {f"q{i}" for i in range(8)}
    official = official_evaluate(dataset, predictions)
    assert metrics["qa"]["exact_match"] == pytest.approx(official["exact_match"], abs=1e-9)
    assert metrics["qa"]["f1"] == pytest.approx(official["f1"], abs=1e-9)
    contexts = {qa["id"]: p["context"] for a in dataset for p in a["paragraphs"] for qa in p["qas"]}
    assert all(answer in contexts[qid] for qid, answer in predictions.items())

    # classification: the CSV re-read and scored with sklearn
    with open(out / "cls_predictions.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and set(rows[0]) == {"id", "text", "gold", "pred", "probability"}
    golds, preds = [r["gold"] for r in rows], [r["pred"] for r in rows]
    assert metrics["cls"]["accuracy"] == pytest.approx(sum(g == p for g, p in zip(golds, preds)) / 8, abs=1e-12)
    assert metrics["cls"]["macro_f1"] == pytest.approx(sk_f1(golds, preds, average="macro", zero_division=0), abs=1e-12)

    # every file there, plots are PNGs, nothing half-written left behind
    names = {p.name for p in out.iterdir()}
    assert names == {
        "ner_predictions.txt",
        "qa_predictions.json",
        "cls_predictions.csv",
        "metrics.json",
        "ner_confusion.png",
        "cls_confusion.png",
        "learning_curves.png",
    }
    assert all((out / n).read_bytes().startswith(b"\x89PNG") for n in names if n.endswith(".png"))

    # human output on stderr: tables, the unknown type, the worst sentences
    assert "NER per entity type" in result.stderr and "gold \\ pred" in result.stderr
    assert "MISC" in result.stderr and "with the most errors" in result.stderr
    assert "no label for: MISC" in result.stderr


def test_strict_mode_matches_seqeval_strict(trained, tmp_path):
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    from mtlcli.evaluate_run import evaluate_model

    report = evaluate_model(trained["model"], {"ner": str(trained["ner"])}, strict=True, out_dir=tmp_path, worst=2)
    sentences = read_conll_predictions(tmp_path / "ner_predictions.txt")
    gold = [[g for _, g, _ in s] for s in sentences]
    pred = [[p for _, _, p in s] for s in sentences]
    assert report.metrics["ner"]["f1"] == pytest.approx(f1_score(gold, pred, mode="strict", scheme=IOB2), abs=1e-12)
    assert report.metrics["ner"]["mode"] == "strict"
    worst = report.worst["ner"]
    assert len(worst) == 2 and worst[0]["entity_errors"] >= worst[1]["entity_errors"] > 0
    assert (tmp_path / "learning_curves.png").is_file()  # the model sits in a run directory with metrics.jsonl


def test_batch_size_does_not_change_the_scores(trained):
    from mtlcli.evaluate_run import evaluate_model

    files = {"ner": str(trained["ner"]), "qa": str(trained["qa"]), "cls": str(trained["cls"])}
    one, many = (evaluate_model(trained["model"], files, batch_size=size).metrics for size in (1, 32))
    for task in files:  # the same predictions, so the very same numbers
        assert one[task] == many[task], task


def test_task_the_model_lacks_is_one_line_exit_2(trained, tmp_path):
    config = json.loads((trained["model"] / "config.json").read_text())
    ner_only = tmp_path / "ner-only"
    ner_only.mkdir()
    (ner_only / "config.json").write_text(json.dumps(config | {"tasks": ["ner"]}))
    result = run("evaluate", ner_only, "--qa", trained["qa"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {ner_only}: the model has no QA head (its tasks: NER); drop --qa"
    ]
    assert result.stdout == "" and not list(tmp_path.glob("*.json"))

    result = run("evaluate", trained["model"])
    assert result.exit_code == 2 and "nothing to evaluate" in result.stderr
    result = run("evaluate", trained["model"].parent, "--ner", trained["ner"])  # the run dir, not a model
    assert result.exit_code == 2 and "best-ner" in result.stderr and "last" in result.stderr


def test_bad_data_file_is_exit_2_naming_the_line(trained, tmp_path):
    bad = tmp_path / "bad.conll"
    bad.write_text("Paris B-LOC\nis X-TAG\n")
    result = run("evaluate", trained["model"], "--ner", bad, "--out", tmp_path / "out")
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {bad}:2:")
    assert not (tmp_path / "out").exists()


def test_full_disk_is_exit_1_and_leaves_no_partial_file(trained, tmp_path, monkeypatch):
    import mtlcli.fileio

    real = mtlcli.fileio.os.fsync

    def full(fd):
        real(fd)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mtlcli.fileio.os, "fsync", full)
    result = run("evaluate", trained["model"], "--qa", trained["qa"], "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: could not write {tmp_path / 'out' / 'qa_predictions.json'}: No space left on device"
    ]
    assert list((tmp_path / "out").iterdir()) == []  # the temp file is gone, no half-written file


def test_suite_runs_and_judges(trained, tmp_path):
    result = run("evaluate", trained["model"], "--suite", "--json", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    suite = json.loads(result.stdout)["suite"]
    assert [c["task"] for c in suite["cases"]] == ["ner"] * 5 + ["qa"] * 5
    assert suite["cases"][0]["text"] == "Apple Inc. was founded by Steve Jobs in California."
    assert all(c["status"] in ("pass", "partial", "fail") for c in suite["cases"])
    assert {t: s["cases"] for t, s in suite["summary"].items()} == {"ner": 5, "qa": 5}
    # one symbol per case in the tables, and each of the three in each task's summary line
    assert sum(result.stderr.count(symbol) for symbol in ("✅", "⚠️", "❌")) == 10 + 2 * 3
    assert {p.name for p in tmp_path.iterdir()} >= {"metrics.json"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_suite_judging():
    from mtlcli.suite import FAIL, PARTIAL, PASS, judge_ner, judge_qa

    text = "Apple Inc. was founded by Steve Jobs in California."
    expected = [("Apple Inc.", "ORG"), ("Steve Jobs", "PER"), ("California", "LOC")]

    def at(word, kind, extra=0):
        return (text.index(word), text.index(word) + len(word) + extra, kind)

    exact = [at("Apple Inc", "ORG"), at("Steve Jobs", "PER"), at("California", "LOC", extra=1)]  # punctuation aside
    assert judge_ner(text, expected, exact)[:2] == (PASS, 1.0)
    assert judge_ner(text, expected, exact + [at("founded", "MISC")])[0] == PARTIAL  # something extra
    assert judge_ner(text, expected, [at("Apple", "ORG")])[0] == PARTIAL  # boundary wrong, overlaps
    assert judge_ner(text, expected, [at("Steve", "LOC")])[0] == PARTIAL
    assert judge_ner(text, expected, [at("founded", "ORG")])[:2] == (FAIL, 0.0)
    assert judge_ner(text, expected, [])[0] == FAIL
    assert judge_qa("the 2009 to 2017.", "2009 to 2017")[0] == PASS
    assert judge_qa("the champ de mars in paris, france", "Paris, France")[0] == PARTIAL
    assert judge_qa("", "South America")[0] == FAIL


def test_learning_curves_and_confusion_plots():
    from mtlcli.plots import confusion_png, learning_curves_png

    records = [
        {
            "type": "epoch",
            "epoch": e,
            "train_loss": {"ner": 1 / e, "qa": 2 / e},
            "valid": {"ner": {"f1": 0.1 * e}, "qa": {"f1": 10.0 * e, "exact_match": 5.0 * e}},
        }
        for e in (1, 2, 3)
    ]
    assert learning_curves_png(records).startswith(b"\x89PNG")
    assert learning_curves_png([{"epoch": 1, "train_loss": {"cls": 0.5}}]).startswith(b"\x89PNG")  # no validation
    labels = [f"label{i}" for i in range(30)]  # too many to annotate: colours only
    assert confusion_png(labels, [[1] * 30 for _ in range(30)]).startswith(b"\x89PNG")


def test_help_and_usage_errors_do_not_import_heavy_libraries(trained):
    code = (
        "import sys; from typer.testing import CliRunner; from mtlcli.cli.main import app; "
        f"r = CliRunner().invoke(app, ['evaluate', {str(trained['model'])!r}]); assert r.exit_code == 2; "
        "print(sorted(m for m in ('torch', 'transformers', 'matplotlib', 'seqeval') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
