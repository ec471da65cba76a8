import os
import signal

import pytest
from safetensors.torch import load_file

from mtlcli.config import resolve
from mtlcli.errors import InputError, TrainingInterrupted
from mtlcli.training.checkpoint import latest_valid_checkpoint, list_checkpoints
from mtlcli.training.trainer import resume_config, train


def settings(backbone_dir, out, ner_file, qa_file):
    return [
        f'backbone="{backbone_dir}"',
        f'output_dir="{out}"',
        'cache_dir=""',
        "precision=fp32",
        "batch_size=2",
        "lr=1e-3",
        "max_length=32",
        "qa_max_length=48",
        "doc_stride=16",
        "epochs=3",
        "save_every=3",
        f'ner_train="{ner_file}"',
        f'ner_valid="{ner_file}"',
        f'qa_train="{qa_file}"',
        "keep_checkpoints=2",
    ]


def weights(run_dir):
    return load_file(str(run_dir / "last" / "model.safetensors"))


def interrupt_at(step_number):
    def on_event(kind, data):
        if kind == "step" and data["epoch"] == 2 and data["step"] == step_number:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does

    return on_event


def test_interrupted_run_resumes_to_bit_identical_weights(backbone_dir, tmp_path, ner_file, qa_file):
    straight = tmp_path / "straight"
    reference = train(resolve([], settings(backbone_dir, straight, ner_file, qa_file)))

    run = tmp_path / "interrupted"
    with pytest.raises(TrainingInterrupted, match=f"mtl train --resume {run}"):
        train(resolve([], settings(backbone_dir, run, ner_file, qa_file)), interrupt_at(5))
    assert latest_valid_checkpoint(run)[0].name.startswith("step-")
    resumed = train(resume_config(run), resume=True)

    expected, got = weights(straight), weights(run)
    assert expected.keys() == got.keys()
    assert all((expected[k] == got[k]).all() for k in expected)  # bit-identical on CPU
    assert [r["valid"]["ner"]["f1"] for r in resumed.history] == [r["valid"]["ner"]["f1"] for r in reference.history]
    epochs_logged = (run / "metrics.jsonl").read_text().count('"type": "epoch"')
    assert epochs_logged == 3
    assert len(list_checkpoints(run)) == 2  # keep_checkpoints


class Crash(Exception):
    """The process dies (kill -9, power cut) right after a checkpoint."""


def crash_after_checkpoint(step_number):
    def on_event(kind, data):
        if kind == "checkpoint" and data["step"] == step_number:
            raise Crash

    return on_event


def test_a_checkpoint_inside_a_grad_accum_window_resumes_to_bit_identical_weights(
    backbone_dir, tmp_path, ner_file, qa_file
):
    def accumulating(out):
        return resolve(
            [], settings(backbone_dir, out, ner_file, qa_file) + ["grad_accum=2", "epochs=2", "weighting=uncertainty"]
        )

    train(accumulating(tmp_path / "straight"))
    run = tmp_path / "crashed"
    with pytest.raises(Crash):  # save_every=3: the checkpoint holds one micro-step of a two-step window
        train(accumulating(run), crash_after_checkpoint(3))
    assert latest_valid_checkpoint(run)[0].name == "step-00000003"
    train(resume_config(run), resume=True)
    expected, got = weights(tmp_path / "straight"), weights(run)
    assert all((expected[k] == got[k]).all() for k in expected)


def test_torn_checkpoint_is_reported_and_never_loaded(backbone_dir, tmp_path, ner_file, qa_file):
    run = tmp_path / "run"
    train(resolve([], settings(backbone_dir, run, ner_file, qa_file) + ["epochs=1"]))
    newest, older = list_checkpoints(run)[-1], list_checkpoints(run)[-2]
    weights_file = newest / "model.safetensors"
    weights_file.write_bytes(weights_file.read_bytes()[:-100])  # torn write
    path, problems = latest_valid_checkpoint(run)
    assert path == older and "does not match its manifest" in problems[0].what
    (older / "position.json").unlink()
    with pytest.raises(InputError, match=r"\(and 1 more\)") as failure:
        latest_valid_checkpoint(run)
    assert "position.json is missing" in failure.value.problems[1].what


def test_resume_needs_a_run_directory(tmp_path):
    with pytest.raises(InputError, match="train_config.toml missing"):
        resume_config(tmp_path)


def snapshot(root):
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_a_copied_run_directory_resumes_in_place_from_any_working_directory(
    backbone_dir, tmp_path, ner_file, qa_file, monkeypatch
):
    import shutil

    from typer.testing import CliRunner

    from mtlcli.cli.main import app

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    shutil.copy(ner_file, project / "data" / "ner.conll")
    shutil.copy(qa_file, project / "data" / "qa.json")
    monkeypatch.chdir(project)  # every path relative to where the run starts
    relative = [
        f'backbone="{backbone_dir}"',
        'output_dir="runs/x"',
        'cache_dir="cache"',
        "precision=fp32",
        "batch_size=2",
        "max_length=32",
        "qa_max_length=48",
        "doc_stride=16",
        "epochs=2",
        "save_every=3",
        'ner_train="data/ner.conll"',
        'ner_valid="data/ner.conll"',
        'qa_train="data/qa.json"',
    ]
    with pytest.raises(Crash):
        train(resolve([], relative), crash_after_checkpoint(3))
    original = project / "runs" / "x"
    before = snapshot(original)
    copy = tmp_path / "elsewhere" / "y"
    shutil.copytree(original, copy)
    cwd = tmp_path / "somewhere-else"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(app, ["train", "--resume", str(copy)])
    assert result.exit_code == 0, result.output
    assert (copy / "last" / "model.safetensors").is_file()
    assert (copy / "metrics.jsonl").read_text().count('"type": "epoch"') == 2
    assert snapshot(original) == before  # nothing written to the directory it was copied from
    assert not any(cwd.iterdir())  # nor anything relative to the working directory (run, feature cache)


def test_resume_names_the_missing_data_file(tmp_path):
    from mtlcli.config import to_toml

    config = resolve([], [f'ner_train="{tmp_path / "moved.conll"}"'])
    (tmp_path / "train_config.toml").write_text(to_toml(config))
    with pytest.raises(InputError, match=r"ner_train.*moved\.conll"):
        resume_config(tmp_path)


def test_train_config_toml_keeps_any_description(tmp_path):
    import tomllib

    from mtlcli.config import to_toml

    description = 'two lines\nand a\ttab, a "quote", a back\\slash, \r\b\f and \x01 \x1f \x7f é'
    config = resolve([], [f'ner_train="{tmp_path / "ner.conll"}"'])
    config.description = description
    assert tomllib.loads(to_toml(config))["description"] == description
    (tmp_path / "ner.conll").write_text("Paris B-LOC\n")
    (tmp_path / "train_config.toml").write_text(to_toml(config), encoding="utf-8")
    assert resume_config(tmp_path).description == description  # what --resume reads back
