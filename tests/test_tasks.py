"""The task registry: a fourth task added through the registry alone trains, evaluates and predicts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mtlcli import tasks
from mtlcli.data.readers import ReadResult
from mtlcli.features import Features
from mtlcli.tasks import FeatureSettings, Metric, Task, TaskEvaluation

TEXTS = [
    "Apple hired Steve Jobs .",
    "Paris is in France .",
    "The dog jumps .",
    "Google was founded by Larry Page",
    "Angela Merkel visited Washington",
    "Microsoft is near Seattle",
    "Sergey Brin left Google",
    "Hawaii",
]


@dataclass(frozen=True)
class ScoredText:
    id: str
    text: str
    score: float


class TextScore(Task):
    """A toy regression task: one number per text (here: its word count / 5), mean squared error."""

    name, title, short_title = "score", "text score", "score"
    metrics = (Metric("mse", "mean squared error", fraction=False), Metric("neg_mse", "negative MSE", fraction=False))
    primary_metric = "neg_mse"
    headline_metrics = ("neg_mse",)
    prediction_file = "score_predictions.jsonl"
    output_names = ("value",)

    @staticmethod
    def read(path, skip_bad=False, options=None):
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        return ReadResult([ScoredText(str(i), row["text"], float(row["score"])) for i, row in enumerate(rows)], [])

    def featurize(self, examples, tokenizer, settings, labels, training):
        encoded = tokenizer([ex.text for ex in examples], truncation=True, max_length=settings.max_length)
        return Features(
            input_ids=encoded["input_ids"],
            example=list(range(len(examples))),
            extra={"score": [ex.score for ex in examples]},
        )

    def build_head(self, hidden_size, labels, settings):
        from torch import nn

        return nn.Linear(hidden_size, 1)

    def head_forward(self, head, hidden, attention_mask, dropout, targets):
        from torch.nn import functional as F

        value = head(dropout(hidden[:, 0])).float().squeeze(-1)
        return {"value": value} | ({"loss": F.mse_loss(value, targets["score"])} if "score" in targets else {})

    def targets(self, features, rows, width):
        import torch

        return {"score": torch.tensor([features.extra["score"][r] for r in rows])}

    def values(self, model, features, batch_size, device, autocast) -> np.ndarray:
        from mtlcli.inference.forward import forward_batches

        out = np.zeros(len(features), dtype=np.float32)
        for rows, arrays, _ in forward_batches(model, self.name, features, batch_size, device, autocast):
            out[rows] = arrays["value"]
        return out

    def evaluate(self, model, examples, features, batch_size, device, autocast, options):
        values = self.values(model, features, batch_size, device, autocast)
        mse = float(np.mean((values - np.array([ex.score for ex in examples])) ** 2))
        return TaskEvaluation(self.name, {"mse": mse, "neg_mse": -mse}, values.tolist())

    def prediction_text(self, examples, evaluation):
        return "".join(json.dumps({"id": ex.id, "score": v}) + "\n" for ex, v in zip(examples, evaluation.predictions))

    def predict(self, model, tokenizer, inputs, batch_size, device, autocast):
        examples = [ScoredText(str(i), item.text, 0.0) for i, item in enumerate(inputs)]
        features = self.featurize(examples, tokenizer, FeatureSettings.of(model.spec), [], False)
        return self.values(model, features, batch_size, device, autocast).tolist()

    def record(self, item, result, **options):
        return {"text": item.text, "score": round(result, 4)}


@pytest.fixture
def score_task():
    task = tasks.register(TextScore())
    yield task
    tasks.unregister(task.name)


def test_a_fourth_task_trains_evaluates_and_predicts_through_the_registry(score_task, backbone_dir, tmp_path):
    from mtlcli.config import resolve
    from mtlcli.evaluate_run import evaluate_model
    from mtlcli.inference.predictor import Predictor
    from mtlcli.inputs import TextItem
    from mtlcli.training.trainer import train

    data = tmp_path / "score.jsonl"
    data.write_text("".join(json.dumps({"text": t, "score": len(t.split()) / 5}) + "\n" for t in TEXTS * 4))
    config = resolve(
        [],
        [f"score_train={data}", f"score_valid={data}", "lambda_score=2.0"],
        {
            "backbone": str(backbone_dir),
            "output_dir": str(tmp_path / "run"),
            "epochs": 3,
            "lr": 1e-3,
            "batch_size": 8,
            "cache_dir": str(tmp_path / "cache"),
            "device": "cpu",
            "precision": "fp32",
        },
    )
    assert config.tasks() == ["score"] and config.to_dict()["lambda_score"] == 2.0
    result = train(config)
    history = [record["valid"]["score"]["mse"] for record in result.history]
    assert history[-1] < history[0]  # it learns
    assert result.best["score"] == max(-mse for mse in history)
    model_dir = tmp_path / "run" / "best-score"

    report = evaluate_model(model_dir, {"score": str(data)}, out_dir=tmp_path / "eval")
    assert report.metrics["score"]["mse"] == pytest.approx(-result.best["score"], rel=1e-4)
    lines = (tmp_path / "eval" / "score_predictions.jsonl").read_text().splitlines()
    assert len(lines) == len(TEXTS) * 4

    predictor = Predictor(model_dir, device="cpu", precision="fp32")
    values = predictor.predict("score", [TextItem(t) for t in TEXTS])
    assert values == pytest.approx([json.loads(line)["score"] for line in lines[: len(TEXTS)]], abs=1e-5)
    assert score_task.record(TextItem(TEXTS[0]), values[0]) == {"text": TEXTS[0], "score": round(values[0], 4)}


def test_the_registry_names_the_built_in_tasks_and_refuses_unknown_ones():
    from mtlcli.config import field_types
    from mtlcli.errors import InputError

    assert tasks.names()[:3] == ["ner", "qa", "cls"]
    assert {"ner_train", "qa_valid", "cls_train_size", "lambda_qa"} <= set(field_types())
    assert tasks.get("qa").metric("f1").percent(55.0) == 55.0 and tasks.get("ner").metric("f1").percent(0.5) == 50.0
    with pytest.raises(InputError, match="unknown task 'pos'"):
        tasks.get("pos")
    with pytest.raises(ValueError):
        tasks.register(type("Bad", (Task,), {"name": "two_words"})())


def test_a_model_saved_before_the_registry_still_loads(tmp_path):
    from mtlcli.spec import read_spec

    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "backbone": "tiny",
                "backbone_config": {},
                "tasks": ["ner", "qa"],
                "ner_labels": ["O", "B-PER", "I-PER"],
                "cls_labels": [],
                "max_length": 64,
            }
        )
    )
    spec = read_spec(tmp_path)
    assert spec.labels == {"ner": ["O", "B-PER", "I-PER"]} and spec.labels_of("qa") == [] and spec.max_length == 64
