import json

import tomllib
from typer.testing import CliRunner

from mtlcli.cli.main import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(map(str, args)))


def test_dry_run_prints_the_resolved_config_as_toml():
    result = run("train", "--preset", "cpu", "--preset", "quick", "--set", "lr=1e-4", "--epochs", "3", "--dry-run")
    assert result.exit_code == 0, result.output
    config = tomllib.loads(result.stdout)
    assert (config["batch_size"], config["lr"], config["epochs"], config["ner_train_size"]) == (8, 1e-4, 3, 2000)
    assert "Hugging Face Hub" in result.stderr  # cpu's distilbert is a Hub id: say how to work offline


def test_bad_usage_is_one_line_and_exit_2():
    for args, message in [
        (("train", "--preset", "nope", "--dry-run"), "unknown preset 'nope'"),
        (("train", "--set", "colour=blue", "--dry-run"), "unknown key 'colour'"),
        (("train", "--set", "doc_stride=500", "--dry-run"), "doc_stride"),
    ]:
        result = run(*args)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and message in result.stderr
        assert "Traceback" not in result.output


def test_bad_data_names_file_and_line(tmp_path, backbone_dir):
    bad = tmp_path / "bad.conll"
    bad.write_text("Paris B-LOC\nis\nin O\nFrance X-LOC\n")
    result = run("train", "--backbone", backbone_dir, "--ner-train", bad, "-o", tmp_path / "out")
    assert result.exit_code == 2
    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith(f"error: {bad}:2:") and "(and 1 more)" in first_line
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # nothing written for a run that never started


def test_missing_file_and_model_dir(tmp_path):
    result = run("prepare", "--ner-train", tmp_path / "missing.txt", "--backbone", tmp_path)
    assert result.exit_code == 2 and "missing.txt" in result.stderr


def test_train_and_prepare_end_to_end(tmp_path, backbone_dir, ner_file, qa_file):
    common = [
        "--backbone",
        backbone_dir,
        "--ner-train",
        ner_file,
        "--ner-valid",
        ner_file,
        "--qa-train",
        qa_file,
        "--set",
        "qa_max_length=64",
        "--set",
        "doc_stride=16",
        "--set",
        f"cache_dir={tmp_path / 'cache'}",
    ]
    result = run("prepare", *common, "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(r["task"], r["split"]) for r in rows} == {("ner", "train"), ("ner", "valid"), ("qa", "train")}
    ner = next(r for r in rows if r["task"] == "ner")
    assert ner["entities"] == {"LOC": 5, "ORG": 4, "PER": 5} and ner["examples"] == 8
    assert list((tmp_path / "cache").glob("features-*.pt"))

    result = run("train", *common, "--epochs", "1", "-o", tmp_path / "run", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["history"][0]["valid"]["ner"]["num_sentences"] == 8
    assert (tmp_path / "run" / "last" / "config.json").is_file()
    again = run("train", *common, "--epochs", "1", "-o", tmp_path / "run")
    assert again.exit_code == 2 and "not empty" in again.stderr
