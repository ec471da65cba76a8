"""The demo trained from Hugging Face datasets equals the demo trained from its files.

Converts the bundled demo data (Wikigold CoNLL, SQuAD JSON) to two DatasetDicts written with `save_to_disk`
(NER: tokens + ner_tags as ClassLabel integers, as the Hub's conll2003; QA: the Hub's squad schema), each with a
train and a validation split, then runs `mtl train --preset demo` twice, on the files and on the directories,
with the same seed and no feature cache, and compares the per-epoch losses and validation metrics.

    flock /tmp/mtl-heavy.lock python benchmarks/datasets_parity.py [--out runs/datasets-parity]

Writes benchmarks/results/datasets_parity.json; exits 1 when the two runs differ.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine  # noqa: E402

from mtlcli.data.readers import read_ner, read_qa  # noqa: E402
from mtlcli.task_data import data_path  # noqa: E402

SPLITS = {
    "ner": {"train": "@demo/wikigold_train.conll", "validation": "@demo/wikigold_valid.conll"},
    "qa": {"train": "@demo/squad_train.json", "validation": "@demo/squad_valid.json"},
}


def convert(out: Path) -> dict[str, Path]:
    """The demo files as DatasetDicts in the Hub's column conventions; returns {task: directory} (below `out`,
    which is relative to the repository root unless absolute)."""
    import datasets

    ner = {split: read_ner(data_path(path)).examples for split, path in SPLITS["ner"].items()}
    tags = datasets.ClassLabel(names=sorted({tag for examples in ner.values() for ex in examples for tag in ex.tags}))
    ner_features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.List(datasets.Value("string")),
            "ner_tags": datasets.List(tags),
        }
    )
    qa_features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "title": datasets.Value("string"),
            "context": datasets.Value("string"),
            "question": datasets.Value("string"),
            "answers": {
                "text": datasets.List(datasets.Value("string")),
                "answer_start": datasets.List(datasets.Value("int32")),
            },
        }
    )
    ner_splits = {
        split: datasets.Dataset.from_list(
            [
                {"id": str(i), "tokens": ex.tokens, "ner_tags": [tags.str2int(t) for t in ex.tags]}
                for i, ex in enumerate(examples)
            ],
            features=ner_features,
        )
        for split, examples in ner.items()
    }
    qa_splits = {}
    for split, path in SPLITS["qa"].items():
        rows = [
            {
                "id": ex.id,
                "title": ex.title,
                "context": ex.context,
                "question": ex.question,
                "answers": {"text": [a.text for a in ex.answers], "answer_start": [a.start for a in ex.answers]},
            }
            for ex in read_qa(data_path(path)).examples
        ]
        qa_splits[split] = datasets.Dataset.from_list(rows, features=qa_features)
    directories = {"ner": out / "data" / "wikigold", "qa": out / "data" / "squad"}
    datasets.DatasetDict(ner_splits).save_to_disk(ROOT / directories["ner"])
    datasets.DatasetDict(qa_splits).save_to_disk(ROOT / directories["qa"])
    return directories


def train(arguments: list[str], run_dir: Path) -> dict:
    command = ["mtl", "train", "--preset", "demo", *arguments, "--set", "cache_dir=", "-o", str(run_dir), "--overwrite"]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mtlcli", *command[1:]], check=True, cwd=ROOT)
    records = [json.loads(line) for line in (ROOT / run_dir / "metrics.jsonl").read_text().splitlines()]
    epochs = [{k: r[k] for k in ("epoch", "train_loss", "valid")} for r in records if r.get("type") == "epoch"]
    return {"command": " ".join(command), "minutes": round((time.perf_counter() - started) / 60, 1), "epochs": epochs}


def headline(run: dict) -> dict:
    valid = run["epochs"][-1]["valid"]
    return {
        "ner_f1": round(100 * valid["ner"]["f1"], 2),
        "ner_token_accuracy": round(100 * valid["ner"]["token_accuracy"], 2),
        "qa_exact_match": round(valid["qa"]["exact_match"], 2),
        "qa_f1": round(valid["qa"]["f1"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs") / "datasets-parity")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "datasets_parity.json")
    args = parser.parse_args()
    directories = convert(args.out)
    files = train([], args.out / "files")
    from_datasets = train(
        [f"--{task}-{role}={directories[task]}" for task in ("ner", "qa") for role in ("train", "valid")],
        args.out / "datasets",
    )
    identical = [e["train_loss"] for e in files["epochs"]] == [e["train_loss"] for e in from_datasets["epochs"]] and [
        e["valid"] for e in files["epochs"]
    ] == [e["valid"] for e in from_datasets["epochs"]]
    result = {
        "identical": identical,
        "files": files | {"final": headline(files)},
        "datasets": from_datasets | {"final": headline(from_datasets)},
        "machine": machine(),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"identical": identical, "files": headline(files), "datasets": headline(from_datasets)}))
    sys.exit(0 if identical else 1)


if __name__ == "__main__":
    main()
