"""Experiment trackers (--report-to): the run's step and epoch records as TensorBoard / MLflow scalars."""

import importlib.util

import pytest
from typer.testing import CliRunner

from mtlcli.cli.main import app
from mtlcli.config import resolve
from mtlcli.errors import InputError
from mtlcli.training.trainer import train


def tiny_run(backbone_dir, tmp_path, ner_file, qa_file, *settings):
    config = resolve(
        [],
        [
            f'backbone="{backbone_dir}"',
            f'output_dir="{tmp_path / "run"}"',
            'cache_dir=""',
            "precision=fp32",
            "batch_size=4",
            "lr=2e-3",
            "max_length=32",
            "qa_max_length=64",
            "doc_stride=16",
            "epochs=2",
            f'ner_train="{ner_file}"',
            f'ner_valid="{ner_file}"',
            f'qa_train="{qa_file}"',
            f'qa_valid="{qa_file}"',
            *settings,
        ],
    )
    return train(config)


def scalars(directory) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory)).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_gets_every_step_and_epoch_record_as_scalars(backbone_dir, tmp_path, ner_file, qa_file):
    result = tiny_run(backbone_dir, tmp_path, ner_file, qa_file, 'report_to="tensorboard"')
    found = scalars(tmp_path / "run" / "tb" / "mtl")
    steps = 2 * 2 * 2  # 2 epochs of 2 NER and 2 QA batches
    for tag in ("train/lr", "train/tokens_per_s", "train/weights/ner", "train/weights/qa"):
        assert [step for step, _ in found[tag]] == list(range(1, steps + 1)), tag
    # each step trains one task (round robin): its batch loss at that step, the epoch's running mean beside it
    assert len(found["train/step_loss/ner"]) == len(found["train/step_loss/qa"]) == steps // 2
    assert {"train/loss/ner", "train/loss/qa"} <= set(found)
    for tag, value in [
        ("valid/ner/f1", lambda r: r["valid"]["ner"]["f1"]),
        ("valid/ner/token_accuracy", lambda r: r["valid"]["ner"]["token_accuracy"]),
        ("valid/qa/f1", lambda r: r["valid"]["qa"]["f1"]),
        ("train_loss/ner", lambda r: r["train_loss"]["ner"]),
        ("train_loss/qa", lambda r: r["train_loss"]["qa"]),
    ]:  # per epoch, at the epoch's last step
        assert [step for step, _ in found[tag]] == [4, 8], tag
        assert [v for _, v in found[tag]] == pytest.approx([value(r) for r in result.history]), tag
    assert result.history[0]["train_loss"]["ner"] > 0 and result.history[1]["valid"]["ner"]["token_accuracy"] > 0
    hparams = list((tmp_path / "run" / "tb" / "mtl").glob("*/hparams.yml"))
    assert len(hparams) == 1 and "lr: 0.002" in hparams[0].read_text()  # the resolved config


def test_mlflow_gets_the_records_and_the_config_in_a_local_file_store(
    backbone_dir, tmp_path, ner_file, qa_file, monkeypatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    result = tiny_run(backbone_dir, tmp_path, ner_file, qa_file, 'report_to="mlflow"')
    from mlflow.tracking import MlflowClient

    client = MlflowClient((tmp_path / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("mtl")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.002" and run.data.params["report_to"] == "mlflow"
    history = client.get_metric_history(run.info.run_id, "valid/qa/f1")
    assert [m.value for m in history] == pytest.approx([r["valid"]["qa"]["f1"] for r in result.history])
    assert len(client.get_metric_history(run.info.run_id, "train/lr")) == 8


def test_a_missing_tracker_package_names_the_extra_in_one_line(backbone_dir, tmp_path, ner_file, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("tensorboard", "tensorboardX") else real(name, *a),
    )
    result = CliRunner().invoke(
        app,
        ["train", "--backbone", str(backbone_dir), "--ner-train", str(ner_file), "-o", str(tmp_path / "out")]
        + ["--report-to", "tensorboard"],
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --report-to tensorboard needs the tensorboard package: pip install 'mtl[tensorboard]'\n"
    )
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_report_to_takes_known_trackers_or_none():
    assert resolve([], ['report_to="tensorboard,mlflow"']).report_to == "tensorboard,mlflow"
    for bad in ("wandb", "none,tensorboard", "tensorboard,"):
        with pytest.raises(InputError, match="report_to"):
            resolve([], [f'report_to="{bad}"'])
