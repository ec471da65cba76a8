"""Training memory over a run (issue 17): does the RSS stay flat after the first epoch?

Runs `mtl train` with the settings of benchmarks/quick_mode.sh (the seed's quick mode: MiniLM, first 2,000
CoNLL-2003 sentences + SQuAD questions of articles 5-47, 2 epochs, NER 128, QA 384/128, batch 16), optionally
on fewer questions, then reads the RSS that metrics.jsonl records at every step and epoch: the highest RSS of
epoch 1, the highest after it, their ratio (the target: at most 1.15), and the peak. Training hands the heap's
free pages back every 50 steps, so the RSS falls to the working set and climbs with the next large batch: the
RSS at the end of epoch 1 (also given) is wherever that cycle stands, and epoch 1's highest is the level to
compare with (without the trims the RSS only grew, and the two were the same).

    python benchmarks/train_memory.py [--qa-train-size 5000] [--out benchmarks/results/train_memory.json]
    python benchmarks/train_memory.py --metrics RUN/metrics.jsonl ...   (a finished run of the same command)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SHARED", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine  # noqa: E402


def train_command(output_dir: str, qa_train_size: int) -> list[str]:
    data = SHARED / "data"
    return [
        *(sys.executable, "-m", "mtlcli", "train", "--preset", "quick"),
        *("--backbone", str(SHARED / "models" / "minilm-l6-h384-uncased")),
        *("--ner-train", str(data / "conll2003" / "train.txt"), "--ner-valid", str(data / "conll2003" / "valid.txt")),
        *("--qa-train", str(data / "squad" / "dev-v1.1.json"), "--qa-valid", str(data / "squad" / "dev-v1.1.json")),
        *("--set", "qa_train_articles=5:", "--set", "qa_valid_articles=0:5", "--set", f"qa_train_size={qa_train_size}"),
        *("--set", "max_length=128", "--set", "qa_max_length=384", "--set", "doc_stride=128"),
        *("--batch-size", "16", "--lr", "3e-4", "--output-dir", output_dir, "--overwrite"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qa-train-size", type=int, default=5000)
    parser.add_argument("--metrics", help="summarize this metrics.jsonl of a finished run instead of training")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_memory.json"))
    args = parser.parse_args()
    if args.metrics:
        records = [json.loads(line) for line in Path(args.metrics).read_text().splitlines()]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(train_command(tmp, args.qa_train_size), check=True, stdout=subprocess.DEVNULL)
            records = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["type"] == "epoch"]
    after_first = [r["rss_mb"] for r in records if r["type"] == "step" and r["epoch"] > 1]
    after_first += [r["rss_mb"] for r in epochs[1:]]
    first = epochs[0]["peak_rss_mb"]  # the epoch record's peak so far: epoch 1's highest (start-up included)
    result = {
        "command": "python benchmarks/train_memory.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "qa_train_size": args.qa_train_size,
        "rss_peak_epoch_1_mb": first,
        "rss_end_of_epoch_1_mb": epochs[0]["rss_mb"],
        "rss_max_after_epoch_1_mb": max(after_first),
        "ratio": round(max(after_first) / first, 3),
        "peak_rss_mb": epochs[-1]["peak_rss_mb"],
        "per_epoch": [{k: r[k] for k in ("epoch", "rss_mb", "peak_rss_mb", "epoch_time_s")} for r in epochs],
        "rss_every_10_steps_mb": [round(r["rss_mb"]) for r in records if r["type"] == "step"][::10],
        "valid": {task: metrics.get("f1") for task, metrics in epochs[-1].get("valid", {}).items()},
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k not in ("machine", "rss_every_10_steps_mb")}, indent=2))


if __name__ == "__main__":
    main()
