"""Issue 10's results table: which multi-task strategies help, on real data, at one fixed budget.

    python benchmarks/strategies.py run                 # CPU table: 1,000 CoNLL + 1,000 SQuAD questions, 2 epochs
    python benchmarks/strategies.py run --budget quick  # the seed's quick mode: 2,000 + 5,000 (for a GPU)
    python benchmarks/strategies.py table               # Markdown table (mean ± std over seeds) from the result files
    python benchmarks/strategies.py run --budget quick --rows remedies   # issue 19: single-task, joint, each remedy
        --precision fp32 --out benchmarks/results/strategies-quick-cpu   # its CPU table (fp32 on every CPU)
    python benchmarks/strategies.py run --rows joint-static,joint-lora8 # any rows by name

Every run is MiniLM (../shared/models/minilm-l6-h384-uncased), NER 128 / QA 384 (stride 128), batch 16,
lr 3e-4, validated once after the last epoch on the full CoNLL-2003 valid set and the 1,877 questions of
SQuAD dev articles 0-4 (training questions come from articles 5-47, in file order).
Each (configuration, seed) writes one JSON file under OUT/runs/ as soon as it ends and is skipped when that
file exists, so the table can be built over several sessions; `run` goes seed by seed, so a partial table
already has every row. The sampling row is screened: all three samplings on the first seed, then only the
best of them (mean of NER F1 and QA F1) on the other seeds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # mtlcli from this checkout, also where it is not installed

from machine import machine  # noqa: E402

from mtlcli.api import train  # noqa: E402
from mtlcli.fileio import write_atomic  # noqa: E402

BUDGETS = {
    "small": {"ner_train_size": 1000, "qa_train_size": 1000},
    "quick": {"ner_train_size": 2000, "qa_train_size": 5000},
}
COMMON = {
    "epochs": 2,
    "batch_size": 16,
    "lr": 3e-4,
    "max_length": 128,
    "qa_max_length": 384,
    "doc_stride": 128,
    "qa_train_articles": "5:",
    "qa_valid_articles": "0:5",
    "eval_strategy": "end",
}
# configuration → (tasks, settings); the joint rows train NER + QA
CONFIGS = {
    "single-ner": (("ner",), {}),
    "single-qa": (("qa",), {}),
    "joint-static": (("ner", "qa"), {}),
    "joint-static-jointstep": (("ner", "qa"), {"step_mode": "joint"}),
    "joint-uncertainty": (("ner", "qa"), {"weighting": "uncertainty"}),
    "joint-gradnorm": (("ner", "qa"), {"weighting": "gradnorm", "step_mode": "joint"}),
    # the paper's DWA compares the last two epochs: with 2 epochs it never leaves 1.0, so here it compares
    # windows of 25 steps (about a fifth of an epoch at the small budget)
    "joint-dwa": (("ner", "qa"), {"weighting": "dwa", "dwa_period": 25}),
}
SAMPLINGS = {
    "sampling-proportional": (("ner", "qa"), {"sampling": "proportional"}),
    "sampling-temperature2": (("ner", "qa"), {"sampling": "temperature:2"}),
    "sampling-annealed": (("ner", "qa"), {"sampling": "annealed"}),
}
# issue 19's remedies, each alone on the joint default; a row's settings are config keys, and "teachers" names, per
# task, the single-task row (same budget and seed) whose model teaches it (BAM!: --teacher). A combination is one
# more row here, e.g. "joint-best": (("ner", "qa"), {"ner_context": 64, "teachers": BAM_TEACHERS}).
BAM_TEACHERS = {"ner": "single-ner", "qa": "single-qa"}
REMEDIES = {
    "joint-bam": (("ner", "qa"), {"teachers": BAM_TEACHERS}),
    "joint-lora8": (("ner", "qa"), {"task_adapters": "lora:r=8"}),
    "joint-flert64": (("ner", "qa"), {"ner_context": 64}),
    "joint-head-lr10": (("ner", "qa"), {"head_lr_mult": 10.0}),
    "joint-bio": (("ner", "qa"), {"ner_decoding": "bio"}),
}
# the training guide's pairing: BANKING77 intents (all 10,003) + CoNLL-2003 entities (one seed; not in the
# NER+QA table), 626 against 63 batches an epoch: round-robin, and temperature sampling for the imbalance
PAIRING = {
    "joint-cls-ner": (("ner", "cls"), {}),
    "joint-cls-ner-temperature2": (("ner", "cls"), {"sampling": "temperature:2"}),
}


def data_files(shared: Path, tasks: tuple[str, ...]) -> dict[str, str]:
    files = {
        "ner": {"ner_train": "conll2003/train.txt", "ner_valid": "conll2003/valid.txt"},
        "qa": {"qa_train": "squad/dev-v1.1.json", "qa_valid": "squad/dev-v1.1.json"},
        "cls": {"cls_train": "banking77/train.csv", "cls_valid": "banking77/test.csv"},
    }
    return {key: str(shared / "data" / path) for task in tasks for key, path in files[task].items()}


def run_values(tasks: tuple[str, ...], settings: dict, seed: int, run_dir: Path, args) -> dict:
    """The config keys of one run; a row's "teachers" become {task}_teacher directories (trained when missing)."""
    teachers = {f"{task}_teacher": teacher_model(row, seed, args) for task, row in settings.get("teachers", {}).items()}
    values = COMMON | BUDGETS[args.budget] | data_files(args.shared, tasks) | settings | teachers
    values.pop("teachers", None)
    return values | {
        "backbone": str(args.shared / "models/minilm-l6-h384-uncased"),
        "seed": seed,
        "output_dir": str(run_dir),
        "threads": args.threads,
        "device": args.device,
        "precision": args.precision,
    }


def teacher_dir(name: str, seed: int, args) -> Path:
    return Path("runs/strategies") / args.budget / "teachers" / f"{name}-seed{seed}"


def teacher_model(name: str, seed: int, args) -> str:
    """The model of single-task row `name` at `seed`, kept when that row ran (run_one); trained again where only its
    result file is left (an earlier session, another machine)."""
    directory = teacher_dir(name, seed, args)
    if not (directory / "config.json").is_file():
        print(f"[{time.strftime('%H:%M:%S')}] teacher {name} seed {seed}", flush=True)
        run_dir = directory.with_name(directory.name + ".run")
        train(**run_values(*CONFIGS[name], seed, run_dir, args), overwrite=True)
        keep_model(run_dir, directory)
    return str(directory)


def keep_model(run_dir: Path, directory: Path) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(directory, ignore_errors=True)
    shutil.move(str(run_dir / "last"), str(directory))
    shutil.rmtree(run_dir, ignore_errors=True)


def run_one(name: str, tasks: tuple[str, ...], settings: dict, seed: int, args) -> dict:
    path = args.out / "runs" / f"{name}-seed{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    values = run_values(tasks, settings, seed, Path("runs/strategies") / args.budget / f"{name}-seed{seed}", args)
    print(f"[{time.strftime('%H:%M:%S')}] {name} seed {seed}", flush=True)
    run_dir = Path(values["output_dir"])
    started = time.perf_counter()
    result = train(**values, overwrite=True)
    last = result.history[-1]
    record = {
        "config": name,
        "seed": seed,
        "budget": args.budget,
        "settings": values,
        "valid": {
            task: {k: v for k, v in scores.items() if k != "confusion"} for task, scores in last["valid"].items()
        },
        "task_mix": [epoch["task_mix"] for epoch in result.history],
        "final_weights": last["weights"],
        "wall_time_s": round(time.perf_counter() - started, 1),
        "train_time_s": round(sum(epoch["epoch_time_s"] for epoch in result.history), 1),
        "machine": machine(),
    }
    write_atomic(path, json.dumps(record, indent=1) + "\n")
    if name in BAM_TEACHERS.values():  # a single-task model: kept as the teacher of the BAM rows
        keep_model(run_dir, teacher_dir(name, seed, args))
    shutil.rmtree(run_dir, ignore_errors=True)  # ~200 MB of weights and checkpoints per run; the JSON is the result
    print(f"  {summary(record)}", flush=True)
    return record


def summary(record: dict) -> str:
    valid = record["valid"]
    parts = [f"NER F1 {valid['ner']['f1'] * 100:.2f}"] if "ner" in valid else []
    parts += [f"QA EM {valid['qa']['exact_match']:.2f} F1 {valid['qa']['f1']:.2f}"] if "qa" in valid else []
    parts += (
        [f"cls acc {valid['cls']['accuracy'] * 100:.2f} macro-F1 {valid['cls']['macro_f1'] * 100:.2f}"]
        if "cls" in valid
        else []
    )
    return f"{' · '.join(parts)} ({record['wall_time_s'] / 60:.1f} min)"


def sampling_score(record: dict) -> float:
    return (record["valid"]["ner"]["f1"] * 100 + record["valid"]["qa"]["f1"]) / 2


ROWS = CONFIGS | SAMPLINGS | PAIRING | REMEDIES
GROUPS = {"remedies": ["single-ner", "single-qa", "joint-static", *REMEDIES]}


def selected_rows(text: str) -> list[str]:
    names = [row for part in text.split(",") for row in GROUPS.get(part.strip(), [part.strip()])]
    unknown = [name for name in names if name not in ROWS]
    if unknown:
        sys.exit(f"unknown row(s) {', '.join(unknown)}; rows: {', '.join(ROWS)}; groups: {', '.join(GROUPS)}")
    return list(dict.fromkeys(names))


def command_run(args) -> None:
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    if args.rows:  # the chosen rows only, seed by seed
        rows = selected_rows(args.rows)
        for seed in seeds:
            for name in rows:
                run_one(name, *ROWS[name], seed, args)
        print(command_table(args))
        return
    for seed in seeds:
        for name, (tasks, settings) in CONFIGS.items():
            run_one(name, tasks, settings, seed, args)
        screened = {name: run_one(name, *SAMPLINGS[name], seeds[0], args) for name in SAMPLINGS}
        best = max(screened, key=lambda name: sampling_score(screened[name]))
        run_one(best, *SAMPLINGS[best], seed, args)
        if seed == seeds[0] and not args.skip_pairing:
            for name, (tasks, settings) in PAIRING.items():
                run_one(name, tasks, settings, seed, args)
    print(command_table(args))


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.2f}{spread}"


def machines(records: list[dict]) -> str:
    """Where the runs ran, and in which precision (auto on a CPU: bf16 where native, else fp32)."""

    def kind(record: dict) -> str:
        machine, precision = record["machine"], record["settings"].get("precision", "auto")
        if precision == "auto" and machine["device"] == "cpu":
            precision = "bf16" if machine["avx512_bf16"] else "fp32"
        capability = f" ({machine['cpu_capability']})" if machine.get("cpu_capability") else ""
        return f"{machine['cpu']}{capability}, {machine['device']}, {precision}, torch {machine['torch']}"

    return "; ".join(sorted({kind(record) for record in records}))


def command_table(args) -> str:
    records = [json.loads(p.read_text()) for p in sorted((args.out / "runs").glob("*.json"))]
    if not records:
        sys.exit(f"no result files under {args.out / 'runs'}: run `python benchmarks/strategies.py run` first")
    by_config: dict[str, list[dict]] = {}
    for record in records:
        by_config.setdefault(record["config"], []).append(record)
    budget = records[0]["settings"]
    lines = [
        f"MiniLM-L6, {budget['ner_train_size']} CoNLL-2003 train sentences + {budget['qa_train_size']} SQuAD "
        f"training-split questions, {budget['epochs']} epochs; CoNLL-2003 valid (entity F1, seqeval) and SQuAD "
        f"dev articles 0-4 (1,877 questions); mean ± sample std over seeds. Machines: {machines(records)}. "
        f"The BANKING77 rows train on all 10,003 BANKING77 train texts with the NER budget and score the 3,080 test texts. Training time: "
        f"the median over seeds (a run sharing the machine with other work takes longer).",
        "",
        "| configuration | seeds | NER entity F1 | QA EM | QA F1 | BANKING77 acc | BANKING77 macro-F1 | train min (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = list(ROWS)
    for name in sorted(by_config, key=order.index):
        group = by_config[name]

        def column(task: str, key: str, scale: float = 1.0, group=group) -> str:
            return mean_std([r["valid"][task][key] * scale for r in group if task in r["valid"]])

        lines.append(
            f"| {name} | {', '.join(str(r['seed']) for r in group)} | {column('ner', 'f1', 100)} | "
            f"{column('qa', 'exact_match')} | {column('qa', 'f1')} | {column('cls', 'accuracy', 100)} | "
            f"{column('cls', 'macro_f1', 100)} | {statistics.median(r['train_time_s'] / 60 for r in group):.1f} |"
        )
    table = "\n".join(lines) + "\n"
    write_atomic(args.out / "table.md", table)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "table"])
    parser.add_argument("--budget", choices=list(BUDGETS), default="small")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--out", type=Path, help="result folder (default benchmarks/results/strategies-<budget>)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--precision", default="auto", help="fp32 for a CPU table that any CPU can extend (auto: bf16 where native)"
    )
    parser.add_argument("--skip-pairing", action="store_true", help="leave out the BANKING77 + CoNLL-2003 run")
    parser.add_argument(
        "--rows", default="", help="comma list of rows (or the group 'remedies') to run instead of the issue 10 table"
    )
    args = parser.parse_args()
    args.out = args.out or Path(f"benchmarks/results/strategies-{args.budget}")
    if args.command == "run":
        command_run(args)
    else:
        print(command_table(args))


if __name__ == "__main__":
    main()
