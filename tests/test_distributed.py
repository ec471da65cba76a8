"""Two CPU processes (torchrun, gloo) train like one process with the same global batch."""

import json
import shutil
import subprocess
import sys

import torch
from safetensors.torch import load_file


def train_args(backbone_dir, out, cls_file, qa_file, batch_size):
    return [
        "train",
        "--backbone",
        str(backbone_dir),
        "--cls-train",
        str(cls_file),
        "--qa-train",
        str(qa_file),
        "--set",
        "qa_max_length=48",
        "--set",
        "doc_stride=16",
        "--set",
        "cache_dir=",
        "--precision",
        "fp32",
        "--set",
        "head_dropout=0.0",
        "--epochs",
        "2",
        "--batch-size",
        str(batch_size),
        "--lr",
        "1e-3",
        "-o",
        str(out),
        "--json",
    ]


def without_dropout(backbone_dir, tmp_path):
    """Dropout masks depend on how rows are split between processes; without it the runs must agree."""
    copy = tmp_path / "backbone"
    shutil.copytree(backbone_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    config |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def test_two_processes_match_one_process_with_the_same_global_batch(backbone_dir, tmp_path, cls_file, qa_file):
    backbone_dir = without_dropout(backbone_dir, tmp_path)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mtlcli"]
    ddp = subprocess.run(
        launch + train_args(backbone_dir, tmp_path / "ddp", cls_file, qa_file, 2),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    summaries = [json.loads(line) for line in ddp.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1  # only rank 0 reports
    checksums = summaries[0]["weights_checksum_per_process"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]  # both ranks end with identical weights

    single = subprocess.run(
        [sys.executable, "-m", "mtlcli"] + train_args(backbone_dir, tmp_path / "one", cls_file, qa_file, 4),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    ddp_weights = load_file(str(tmp_path / "ddp" / "last" / "model.safetensors"))
    one_weights = load_file(str(tmp_path / "one" / "last" / "model.safetensors"))
    start = load_file(str(backbone_dir / "model.safetensors"))
    moved = max(
        (one_weights[f"encoder.{k}"] - v).abs().max().item() for k, v in start.items() if f"encoder.{k}" in one_weights
    )
    assert moved > 1e-3  # training changed the encoder, so the comparison below means something
    # gradients are averaged in another order, so floats differ in the last bits. The QA bias is left out:
    # a constant added to all start (end) logits leaves their softmax unchanged, so its exact gradient is 0
    # and what it gets is float noise, which Adam turns into steps of size lr.
    for name, tensor in one_weights.items():
        if name != "heads.qa.bias":
            torch.testing.assert_close(ddp_weights[name], tensor, rtol=0, atol=1e-4, msg=name)
