"""Questions without an answer, measured: SQuAD 2.0-style data synthesized from SQuAD v1.1 dev (no SQuAD 2.0
file is available offline), a MiniLM trained on some articles, scored on held-out ones.

Half of the questions (seeded) are made unanswerable: each is paired with another paragraph of its own article
that contains none of its gold answers, and marked `is_impossible` (answers empty), as SQuAD 2.0 marks them.
Articles 0-4 are held out; the training questions are a random sample of articles 5-47. `mtl evaluate`'s engine
then scores the model on the held-out file: HasAns EM/F1, NoAns accuracy and the totals at the default null
threshold (0), and the best threshold found on that same file (the official script's best_f1, optimistic);
and once more with the empty answer never chosen (the spans' own quality on the answerable questions).

    python benchmarks/squad_v2.py [--train-questions 2500] [--held-out-questions 0] [--epochs 2] [--seed 0]
        [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine  # noqa: E402

HELD_OUT_ARTICLES = 5


def unanswerable_version(articles: list[dict], rng: random.Random) -> list[dict]:
    """The articles with half of their questions (those that have another paragraph without their answers)
    moved to such a paragraph as unanswerable questions; the others stay where they are."""
    out = []
    for article in articles:
        paragraphs = article["paragraphs"]
        questions = [(p, qa) for p, paragraph in enumerate(paragraphs) for qa in paragraph["qas"]]
        moved = set(rng.sample(range(len(questions)), len(questions) // 2))
        new = [{"context": paragraph["context"], "qas": []} for paragraph in paragraphs]
        for n, (p, qa) in enumerate(questions):
            answers = [a["text"].lower() for a in qa["answers"]]
            others = [
                o
                for o, paragraph in enumerate(paragraphs)
                if o != p and not any(a in paragraph["context"].lower() for a in answers)
            ]
            if n in moved and others:
                target = rng.choice(others)
                new[target]["qas"].append(
                    {"id": qa["id"], "question": qa["question"], "answers": [], "is_impossible": True}
                )
            else:
                new[p]["qas"].append(qa | {"is_impossible": False})
        out.append({"title": article["title"], "paragraphs": [p for p in new if p["qas"]]})
    return out


def sample_questions(articles: list[dict], size: int, rng: random.Random) -> list[dict]:
    """The articles keeping a random `size` of their questions (all when size is 0)."""
    ids = [qa["id"] for article in articles for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    keep = set(rng.sample(ids, min(size, len(ids)))) if size else set(ids)
    kept = []
    for article in articles:
        paragraphs = [
            {"context": p["context"], "qas": [qa for qa in p["qas"] if qa["id"] in keep]} for p in article["paragraphs"]
        ]
        paragraphs = [p for p in paragraphs if p["qas"]]
        if paragraphs:
            kept.append({"title": article["title"], "paragraphs": paragraphs})
    return kept


def counts(articles: list[dict]) -> dict:
    qas = [qa for article in articles for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    impossible = sum(qa["is_impossible"] for qa in qas)
    return {"articles": len(articles), "questions": len(qas), "unanswerable": impossible}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"))
    parser.add_argument("--train-questions", type=int, default=2500)
    parser.add_argument("--held-out-questions", type=int, default=0, help="0: every question of articles 0-4")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/squad_v2.json"))
    parser.add_argument("--keep", help="keep the data files and the trained run in this directory")
    args = parser.parse_args()

    from mtlcli.config import resolve
    from mtlcli.evaluate_run import evaluate_model
    from mtlcli.training import trainer

    shared = Path(args.shared)
    rng = random.Random(args.seed)
    v1 = json.loads((shared / "data/squad/dev-v1.1.json").read_text(encoding="utf-8"))["data"]
    v2 = unanswerable_version(v1, rng)
    held_out = sample_questions(v2[:HELD_OUT_ARTICLES], args.held_out_questions, rng)
    train_articles = sample_questions(v2[HELD_OUT_ARTICLES:], args.train_questions, rng)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.keep or scratch)
        work.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, articles in (("train", train_articles), ("held_out", held_out)):
            files[name] = work / f"{name}-v2.json"
            files[name].write_text(json.dumps({"version": "v2.0", "data": articles}), encoding="utf-8")
        config = resolve(
            [],
            [f'qa_train="{files["train"]}"', 'cache_dir=""'],
            {
                "backbone": str(shared / "models/minilm-l6-h384-uncased"),
                "epochs": args.epochs,
                "batch_size": 16,
                "lr": 3e-4,
                "qa_max_length": 256,
                "doc_stride": 96,
                "seed": args.seed,
                "output_dir": str(work / "run"),
            },
        )
        started = time.perf_counter()
        events = {}  # the first event of each kind: "start" says the training precision
        trainer.train(config, lambda kind, data: events.setdefault(kind, data), overwrite=True)
        train_minutes = (time.perf_counter() - started) / 60
        started = time.perf_counter()
        model, held_out_file = work / "run" / "last", str(files["held_out"])
        report = evaluate_model(model, {"qa": held_out_file}, precision="auto")
        eval_minutes = (time.perf_counter() - started) / 60
        always = evaluate_model(model, {"qa": held_out_file}, precision="auto", null_threshold=math.inf)
    qa = report.metrics["qa"]
    keys = [
        "exact_match",
        "f1",
        "has_ans_exact_match",
        "has_ans_f1",
        "has_ans_total",
        "no_ans_exact_match",
        "no_ans_total",
        "null_threshold",
        "best_exact_match",
        "best_exact_match_threshold",
        "best_f1",
        "best_f1_threshold",
    ]
    result = {
        "command": "python benchmarks/squad_v2.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "data": "synthesized from SQuAD v1.1 dev: half the questions (seeded) moved to another paragraph of their "
        "article that holds none of their answers, marked is_impossible; held out: articles 0-4",
        "train": counts(train_articles),
        "held_out": counts(held_out),
        "settings": f"MiniLM, QA only, lr 3e-4, batch 16, QA windows 256 / stride 96 (as the demo), "
        f"{args.epochs} epochs, seed {args.seed}; training precision {events['start']['precision']}, "
        f"evaluation precision {report.metrics['precision']}",
        "metrics": {key: round(qa[key], 4) if isinstance(qa[key], float) else qa[key] for key in keys},
        "never_empty": {  # the best span for every question: how good the spans are, apart from abstaining
            key: round(always.metrics["qa"][key], 4)
            for key in ("exact_match", "f1", "has_ans_exact_match", "has_ans_f1")
        },
        "train_minutes": round(train_minutes, 2),
        "eval_minutes": round(eval_minutes, 2),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
