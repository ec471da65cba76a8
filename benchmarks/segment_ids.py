"""What the tokenizer's segment ids (question 0, context 1) do to QA: the same single-task QA training twice,
with them (`segment_ids = true`) and with segment 0 everywhere (the default), same data, seed and settings;
F1 on held-out articles.

    python benchmarks/segment_ids.py [--questions 2000] [--seeds 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine  # noqa: E402

from mtlcli.config import resolve  # noqa: E402
from mtlcli.training import trainer  # noqa: E402


def run(shared: Path, questions: int, seed: int, segments: bool, out: Path) -> dict:
    config = resolve(
        [],
        [
            f"qa_train={shared / 'data/squad/dev-v1.1.json'}",
            f"qa_valid={shared / 'data/squad/dev-v1.1.json'}",
            "qa_train_articles=5:",
            "qa_valid_articles=0:5",
            f"qa_train_size={questions}",
            "eval_strategy=end",
            f"segment_ids={'true' if segments else 'false'}",
        ],
        {
            "backbone": str(shared / "models/minilm-l6-h384-uncased"),
            "epochs": 1,
            "batch_size": 16,
            "lr": 3e-4,
            "seed": seed,
            "output_dir": str(out),
        },
    )
    started = time.perf_counter()
    result = trainer.train(config, overwrite=True)
    valid = result.history[-1]["valid"]["qa"]
    return {
        "segment_ids": segments,
        "seed": seed,
        "exact_match": round(valid["exact_match"], 2),
        "f1": round(valid["f1"], 2),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for segments in (True, False):
                rows.append(run(Path(args.shared), args.questions, seed, segments, Path(tmp) / f"{seed}-{segments}"))
                print(json.dumps(rows[-1]), flush=True)
    result = {
        "command": "python benchmarks/segment_ids.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "budget": f"MiniLM, QA only, first {args.questions} questions of SQuAD dev articles 5-47, 1 epoch, "
        "batch 16, lr 3e-4; validation on the 1,877 questions of articles 0-4",
        "runs": rows,
    }
    (ROOT / "benchmarks/results/segment_ids.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
