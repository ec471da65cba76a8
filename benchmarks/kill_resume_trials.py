"""SIGKILL a training run at random moments, resume it, and compare with an uninterrupted run (issue 6).

Each trial starts `mtl train` on a small real subset (MiniLM, CoNLL-2003 + SQuAD), waits until the run
has logged a random number of steps, waits a further random fraction of a second (so the kill lands
anywhere: mid-step, mid-checkpoint, mid-log-line), kills it with SIGKILL, checks that the newest
checkpoint verifies, resumes with `mtl train --resume`, and compares the final weights with the
uninterrupted run's, bit for bit.

Usage: python benchmarks/kill_resume_trials.py [--trials 10] [--shared ../shared]
Writes benchmarks/results/kill_resume.json.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from machine import machine
from safetensors.torch import load_file

from mtlcli.training.checkpoint import latest_valid_checkpoint, list_checkpoints

ROOT = Path(__file__).resolve().parents[1]


def train_command(shared: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mtlcli",
        "train",
        "--backbone",
        str(shared / "models/minilm-l6-h384-uncased"),
        "--ner-train",
        str(shared / "data/conll2003/train.txt"),
        "--qa-train",
        str(shared / "data/squad/dev-v1.1.json"),
        "--set",
        "ner_train_size=48",
        "--set",
        "qa_train_size=24",
        "--set",
        "qa_train_articles=5:",
        "--set",
        "qa_max_length=128",
        "--set",
        "doc_stride=48",
        "--set",
        "save_every=3",
        "--batch-size",
        "8",
        "--epochs",
        "2",
        "--lr",
        "3e-4",
        "-o",
        str(out),
        "--overwrite",
    ]


def logged_steps(run: Path) -> int:
    try:
        return (run / "metrics.jsonl").read_text(encoding="utf-8").count('"type": "step"')
    except OSError:
        return 0


def same_weights(a: Path, b: Path) -> bool:
    left, right = load_file(str(a / "last/model.safetensors")), load_file(str(b / "last/model.safetensors"))
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--work", type=Path, default=ROOT / "runs/kill-trials")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    shutil.rmtree(args.work, ignore_errors=True)

    reference = args.work / "reference"
    started = time.perf_counter()
    subprocess.run(train_command(args.shared, reference), check=True, capture_output=True)
    reference_s = time.perf_counter() - started
    print(f"uninterrupted run: {reference_s:.1f} s, {logged_steps(reference)} steps", flush=True)

    total_steps = logged_steps(reference)
    trials = []
    for trial in range(args.trials):
        out = args.work / f"trial-{trial}"
        kill_step, extra_delay = rng.randint(0, total_steps - 1), rng.uniform(0.0, 1.0)
        process = subprocess.Popen(
            train_command(args.shared, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        while process.poll() is None and logged_steps(out) < kill_step:
            time.sleep(0.05)
        time.sleep(extra_delay)
        finished_before_kill = process.poll() is not None
        process.send_signal(signal.SIGKILL)
        process.wait()
        checkpoints = list_checkpoints(out)
        verified = latest_valid_checkpoint(out)[0].name if checkpoints else None  # raises if none verifies
        resume = subprocess.run(
            [sys.executable, "-m", "mtlcli", "train", "--resume", str(out)], capture_output=True, text=True
        )
        if not checkpoints:  # killed before the first checkpoint: --resume must say so, and a fresh run starts
            assert resume.returncode == 2, resume.stderr
            resume = subprocess.run(train_command(args.shared, out), capture_output=True, text=True)
        row = {
            "trial": trial,
            "killed_after_step": kill_step,
            "extra_delay_s": round(extra_delay, 2),
            "finished_before_kill": finished_before_kill,
            "checkpoints_on_disk": [p.name for p in checkpoints],
            "resumed_from": verified,
            "resume_exit_code": resume.returncode,
            "identical_to_uninterrupted": resume.returncode == 0 and same_weights(out, reference),
        }
        trials.append(row)
        print(json.dumps(row), flush=True)

    summary = {
        "command": f"python benchmarks/kill_resume_trials.py --trials {args.trials}",
        "machine": machine(),
        "uninterrupted_s": round(reference_s, 1),
        "steps": total_steps,
        "identical": sum(row["identical_to_uninterrupted"] for row in trials),
        "trials": trials,
    }
    results = ROOT / "benchmarks/results/kill_resume.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{summary['identical']}/{len(trials)} trials resumed to bit-identical weights; written to {results}")


if __name__ == "__main__":
    main()
