"""Training throughput against Hugging Face's Trainer (issue 17): single-task NER and QA on the same examples,
batch size, learning rate, warmup, weight decay and epochs, one after the other in one script.

The peer is what a user of transformers runs: `Trainer` with `run_ner.py` / `run_qa.py` features and their
defaults (first sub-token labelled, dynamic padding for NER; QA windows padded to max_length as run_qa.py does by
default), fp32; with `--peer-bf16` (or on a CPU with native bf16) `bf16=True`. mtl runs `mtl train` single-task
with its defaults (precision auto: fp32 without native bf16). Each training runs in a fresh process; its time is
the training loop only (Trainer's train_runtime; the sum of mtl's epoch_time_s), validation timed apart. Both
models are scored on the same validation examples: seqeval entity F1 for NER (mtl's own metric is seqeval's
default mode), SQuAD v1.1 F1 for QA (the peer's predictions post-processed as run_qa.py's utils_qa does).

    python benchmarks/train_speed.py [--tasks ner qa] [--seeds 42 1 2] [--out benchmarks/results/train_speed.json]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/train_speed.py ...   (as on an AVX2-only CPU)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SHARED", ROOT.parent / "shared"))
BACKBONE = SHARED / "models" / "minilm-l6-h384-uncased"
CONLL = SHARED / "data" / "conll2003"
SQUAD = SHARED / "data" / "squad" / "dev-v1.1.json"
SETTINGS = {
    "ner": {"examples": 2000, "epochs": 2, "max_length": 128},
    "qa": {"examples": 1000, "epochs": 1, "max_length": 384, "stride": 128, "train_articles": 5, "valid_articles": 2},
}
COMMON = {"batch_size": 16, "lr": 3e-4, "warmup": 0.1, "weight_decay": 0.01}
# --check: a smoke run of every code path (48 training examples; the Trainer scored on 48 validation examples)
CHECK = os.environ.get("TRAIN_SPEED_CHECK") == "1"
if CHECK:
    for settings in SETTINGS.values():
        settings["examples"] = 48


# ---------------------------------------------------------------- the peer: Trainer with run_ner.py / run_qa.py
def conll_sentences(path: Path) -> list[tuple[list[str], list[str]]]:
    sentences, words, tags = [], [], []
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip() or line.startswith("-DOCSTART-"):
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        columns = line.split()
        words.append(columns[0])
        tags.append(columns[-1])
    return sentences


def squad_questions(articles: list[dict]) -> list[dict]:
    return [
        {"id": qa["id"], "question": qa["question"], "context": p["context"], "answers": qa["answers"]}
        for article in articles
        for p in article["paragraphs"]
        for qa in p["qas"]
    ]


def trainer_args(seed: int, epochs: int, bf16: bool, output_dir: str):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=COMMON["batch_size"],
        per_device_eval_batch_size=64,
        learning_rate=COMMON["lr"],
        warmup_steps=COMMON["warmup"],  # a float below 1: the ratio of the training steps
        weight_decay=COMMON["weight_decay"],
        num_train_epochs=epochs,
        seed=seed,
        bf16=bf16,
        use_cpu=True,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )


def peer_ner(seed: int, bf16: bool, output_dir: str) -> dict:
    from datasets import Dataset
    from seqeval.metrics import f1_score
    from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification, Trainer

    settings = SETTINGS["ner"]
    train = conll_sentences(CONLL / "train.txt")[: settings["examples"]]
    valid = conll_sentences(CONLL / "valid.txt")[: 48 if CHECK else None]
    labels = sorted({tag for _, tags in train for tag in tags})
    label_id = {tag: i for i, tag in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(BACKBONE)

    def features(sentences):  # run_ner.py's tokenize_and_align_labels, label_all_tokens=False
        encoded = tokenizer([w for w, _ in sentences], is_split_into_words=True, truncation=True,
                            max_length=settings["max_length"])  # fmt: skip
        rows = []
        for i, (_, tags) in enumerate(sentences):
            previous, row = None, []
            for word in encoded.word_ids(i):
                row.append(-100 if word is None or word == previous else label_id.get(tags[word], -100))
                previous = word
            rows.append(row)
        return Dataset.from_dict({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
                                  "labels": rows})  # fmt: skip

    model = AutoModelForTokenClassification.from_pretrained(
        BACKBONE, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_id
    )
    args = trainer_args(seed, settings["epochs"], bf16, output_dir)
    trainer = Trainer(model=model, args=args, train_dataset=features(train),
                      data_collator=DataCollatorForTokenClassification(tokenizer))  # fmt: skip
    train_s = trainer.train().metrics["train_runtime"]
    started = time.perf_counter()
    output = trainer.predict(features(valid))
    predictions = output.predictions.argmax(-1)
    gold, predicted = [], []
    for row, label_row, (_, tags) in zip(predictions, output.label_ids, valid):
        kept = [labels[p] for p, gold_id in zip(row, label_row) if gold_id != -100]
        gold.append(tags)
        predicted.append(kept + ["O"] * (len(tags) - len(kept)))  # words cut by max_length: scored as missed
    return {"train_s": train_s, "metric": 100 * f1_score(gold, predicted), "eval_s": time.perf_counter() - started}


def peer_qa(seed: int, bf16: bool, output_dir: str) -> dict:
    import numpy as np
    from datasets import Dataset
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, Trainer, default_data_collator

    from mtlcli.metrics import qa_metrics

    settings = SETTINGS["qa"]
    articles = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    train = squad_questions(articles[settings["train_articles"] :])[: settings["examples"]]
    valid = squad_questions(articles[: settings["valid_articles"]])[: 48 if CHECK else None]
    tokenizer = AutoTokenizer.from_pretrained(BACKBONE)

    def encode(questions):  # run_qa.py: questions stripped, context truncated, windows padded to max_length
        return tokenizer([q["question"].lstrip() for q in questions], [q["context"] for q in questions],
                         truncation="only_second", max_length=settings["max_length"], stride=settings["stride"],
                         return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length")  # fmt: skip

    encoded = encode(train)
    starts, ends = [], []
    for i, offsets in enumerate(encoded["offset_mapping"]):  # run_qa.py's prepare_train_features
        question = train[encoded["overflow_to_sample_mapping"][i]]
        answer = question["answers"][0]
        first, last = answer["answer_start"], answer["answer_start"] + len(answer["text"])
        context = [k for k, s in enumerate(encoded.sequence_ids(i)) if s == 1]
        if offsets[context[0]][0] > first or offsets[context[-1]][1] < last:
            starts.append(0)
            ends.append(0)
            continue
        starts.append(max(k for k in context if offsets[k][0] <= first))
        ends.append(min(k for k in context if offsets[k][1] >= last))
    columns = {key: encoded[key] for key in ("input_ids", "token_type_ids", "attention_mask")}
    train_set = Dataset.from_dict(columns | {"start_positions": starts, "end_positions": ends})
    model = AutoModelForQuestionAnswering.from_pretrained(BACKBONE)
    args = trainer_args(seed, settings["epochs"], bf16, output_dir)
    trainer = Trainer(model=model, args=args, train_dataset=train_set, data_collator=default_data_collator)
    train_s = trainer.train().metrics["train_runtime"]

    started = time.perf_counter()
    encoded = encode(valid)
    columns = {key: encoded[key] for key in ("input_ids", "token_type_ids", "attention_mask")}
    output = trainer.predict(Dataset.from_dict(columns))
    start_logits, end_logits = output.predictions
    best: dict[str, tuple[float, str]] = {}
    for i, offsets in enumerate(encoded["offset_mapping"]):  # utils_qa.postprocess_qa_predictions, n_best 20
        question = valid[encoded["overflow_to_sample_mapping"][i]]
        context = {k for k, s in enumerate(encoded.sequence_ids(i)) if s == 1}
        for s in np.argsort(start_logits[i])[-20:]:
            for e in np.argsort(end_logits[i])[-20:]:
                if s in context and e in context and s <= e < s + 30:
                    score = float(start_logits[i][s] + end_logits[i][e])
                    if score > best.get(question["id"], (-np.inf, ""))[0]:
                        text = question["context"][offsets[s][0] : offsets[e][1]]
                        best[question["id"]] = (score, text)
    predictions = {q["id"]: best.get(q["id"], (0, ""))[1] for q in valid}
    gold = {q["id"]: [a["text"] for a in q["answers"]] for q in valid}
    metric = qa_metrics(predictions, gold)["f1"]
    return {"train_s": train_s, "metric": metric, "eval_s": time.perf_counter() - started}


# ---------------------------------------------------------------- mtl train, single-task
def mtl_command(task: str, seed: int, output_dir: str) -> list[str]:
    settings = SETTINGS[task]
    data = (
        ["--ner-train", str(CONLL / "train.txt"), "--ner-valid", str(CONLL / "valid.txt"),
         "--set", f"ner_train_size={settings['examples']}", "--set", f"max_length={settings['max_length']}"]
        if task == "ner"
        else ["--qa-train", str(SQUAD), "--qa-valid", str(SQUAD),
              "--set", f"qa_train_articles={settings['train_articles']}:",
              "--set", f"qa_valid_articles=0:{settings['valid_articles']}",
              "--set", f"qa_train_size={settings['examples']}",
              "--set", f"qa_max_length={settings['max_length']}", "--set", f"doc_stride={settings['stride']}"]
    )  # fmt: skip
    return [
        *(sys.executable, "-m", "mtlcli", "train", "--backbone", str(BACKBONE), *data),
        *("--epochs", str(settings["epochs"]), "--batch-size", str(COMMON["batch_size"]), "--lr", str(COMMON["lr"])),
        *("--set", f"warmup_ratio={COMMON['warmup']}", "--set", f"weight_decay={COMMON['weight_decay']}"),
        *("--seed", str(seed), "--output-dir", output_dir, "--overwrite"),
    ]


def mtl_run(task: str, seed: int, output_dir: str) -> dict:
    subprocess.run(mtl_command(task, seed, output_dir), check=True, stdout=subprocess.DEVNULL)
    records = [json.loads(line) for line in (Path(output_dir) / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["type"] == "epoch"]
    metric = epochs[-1]["valid"][task]["f1"]
    return {
        "train_s": sum(r["epoch_time_s"] for r in epochs),
        "metric": 100 * metric if task == "ner" else metric,
        "eval_s": epochs[-1]["eval_time_s"],
        "peak_rss_mb": epochs[-1].get("peak_rss_mb"),
    }


# ---------------------------------------------------------------- the comparison
def in_fresh_process(role: str, task: str, seed: int, bf16: bool) -> dict:
    """One training in its own process (no allocator or thread state shared with the other run)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, __file__, "_one", role, task, str(seed), tmp, str(out)] + (
            ["--bf16"] if bf16 else []
        )
        subprocess.run(command, check=True, cwd=ROOT)
        return json.loads(out.read_text())


def one(role: str, task: str, seed: int, output_dir: str, bf16: bool) -> dict:
    if role == "mtl":
        return mtl_run(task, seed, str(Path(output_dir) / "run"))
    return (peer_ner if task == "ner" else peer_qa)(seed, bf16, str(Path(output_dir) / "trainer"))


def main() -> None:
    if sys.argv[1:2] == ["_one"]:
        role, task, seed, output_dir, out = sys.argv[2:7]
        result = one(role, task, int(seed), output_dir, "--bf16" in sys.argv)
        Path(out).write_text(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["ner", "qa"], choices=["ner", "qa"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--peer-bf16", action="store_true", help="Trainer with bf16=True (default: where native)")
    parser.add_argument("--check", action="store_true", help="a smoke run: 48 examples, results not written")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_speed.json"))
    args = parser.parse_args()
    if args.check:
        os.environ["TRAIN_SPEED_CHECK"] = "1"  # read by the training processes
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch
    from machine import machine

    bf16 = args.peer_bf16 or (
        torch.backends.cpu.get_cpu_capability().startswith("AVX512") and torch.cpu._is_avx512_bf16_supported()
    )
    runs = []
    for task in args.tasks:
        for seed in args.seeds:
            peer = in_fresh_process("peer", task, seed, bf16)
            ours = in_fresh_process("mtl", task, seed, bf16)
            runs.append(
                {"task": task, "seed": seed, "trainer": peer, "mtl": ours, "ratio": peer["train_s"] / ours["train_s"]}
            )
            print(f"{task} seed {seed}: Trainer {peer['train_s']:.1f} s / {peer['metric']:.2f}, "
                  f"mtl {ours['train_s']:.1f} s / {ours['metric']:.2f}, {runs[-1]['ratio']:.2f}x", flush=True)  # fmt: skip
    summary = {}
    for task in args.tasks:
        mine = [r for r in runs if r["task"] == task]

        def mean(role, key, rows=mine):
            return round(statistics.mean(r[role][key] for r in rows), 2)

        summary[task] = {
            "ratio": round(statistics.mean(r["ratio"] for r in mine), 2),
            "trainer_s": mean("trainer", "train_s"),
            "mtl_s": mean("mtl", "train_s"),
            "trainer_metric": mean("trainer", "metric"),
            "mtl_metric": mean("mtl", "metric"),
        }
    result = {
        "command": "python benchmarks/train_speed.py " + " ".join(sys.argv[1:]),
        "env": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if k in os.environ},
        "machine": machine(),
        "load_average": os.getloadavg(),
        "settings": {"common": COMMON, **SETTINGS, "trainer_bf16": bf16},
        "summary": summary,
        "runs": runs,
    }
    if not args.check:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
