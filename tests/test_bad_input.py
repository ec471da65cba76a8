"""Every kind of malformed file: exit 2, one line naming the file (and line), no traceback, nothing written."""

import errno
import gzip
import json

import pytest
from typer.testing import CliRunner

from mtlcli.cli.main import app

SQUAD_OK = {
    "context": "Paris is in France.",
    "qas": [{"id": "a", "question": "Where?", "answers": [{"text": "France", "answer_start": 12}]}],
}


def squad(paragraph):
    return json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": [paragraph]}]})


MALFORMED = {
    # name: (task flag, content, text expected in the message)
    "latin1.conll": ("--ner-train", "Paris B-LOC\nZ\xfcrich B-LOC\n".encode("latin-1"), ":2:"),
    "empty.conll": ("--ner-train", b"", "empty"),
    "no_tag.conll": ("--ner-train", b"Paris B-LOC\nis\n", ":2: tag column missing"),
    "unknown_tag.conll": ("--ner-train", b"Paris B-LOC\nis X-FOO\n", ":2: unknown tag"),
    "garbage.conll": ("--ner-train", bytes(range(256)) * 4, "garbage.conll"),
    "answer_missing.json": (
        "--qa-train",
        squad(
            {
                "context": "Paris is in France.",
                "qas": [{"id": "a", "question": "Where?", "answers": [{"text": "Spain", "answer_start": 0}]}],
            }
        ).encode(),
        "qas[0]",
    ),
    "duplicate_ids.json": (
        "--qa-train",
        squad({"context": "Paris is in France.", "qas": SQUAD_OK["qas"] * 2}).encode(),
        "duplicate",
    ),
    "not_json.json": ("--qa-train", b'{"data": [', "not_json.json"),
    "truncated.json.gz": ("--qa-train", gzip.compress(squad(SQUAD_OK).encode())[:-10], "truncated.json.gz"),
    "other_columns.csv": ("--cls-train", b"sentence_text,category_name\nhello,greet\n", "columns"),
    "empty_label.csv": ("--cls-train", b"text,label\nhello,\n", ":2:"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_file_is_one_clear_line_and_exit_2(tmp_path, name):
    flag, content, expected = MALFORMED[name]
    path = tmp_path / name
    path.write_bytes(content)
    result = CliRunner().invoke(
        app, ["train", flag, str(path), "--backbone", str(tmp_path), "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 2, result.output
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"error: {path}") and expected in first, first
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_full_disk_during_checkpoint_keeps_the_previous_one(backbone_dir, tmp_path, ner_file, monkeypatch):
    from mtlcli.config import resolve
    from mtlcli.errors import WorkError
    from mtlcli.training import checkpoint
    from mtlcli.training.trainer import train

    settings = [
        f'backbone="{backbone_dir}"',
        f'output_dir="{tmp_path / "run"}"',
        'cache_dir=""',
        f'ner_train="{ner_file}"',
        "epochs=2",
        "batch_size=4",
        "precision=fp32",
    ]
    real_save = checkpoint.torch.save
    calls = []

    def failing_save(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # the second checkpoint hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", failing_save)
    with pytest.raises(WorkError, match="No space left on device; the previous checkpoint step-00000002 is kept"):
        train(resolve([], settings))
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path / "run")] == ["step-00000002"]
    assert checkpoint.verify(tmp_path / "run" / "checkpoints" / "step-00000002") is None
    assert not list((tmp_path / "run" / "checkpoints").glob(".staging-*"))
