"""`mtl benchmark` results as tables (rendered by the CLI with Rich, or as Markdown for a README), CSV and a PNG
bar chart. Pure functions of the result dict of `run_benchmark`: nothing here measures or prints.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from .. import tasks as registry


def short(task: str) -> str:
    return registry.get(task).short_title


@dataclass
class Column:
    name: str
    better: str = ""  # "max" or "min": the best value of the column is highlighted
    kind: str = "text"  # text | int | rate | ms | mb | s | pct | ratio


@dataclass
class ReportTable:
    title: str
    columns: list[Column]
    rows: list[list] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # per row: best values are found among rows of one group
    ranked: list[bool] = field(default_factory=list)  # per row: whether it competes for "best"
    caption: str = ""

    def add(self, values: list, group: str = "", ranked: bool = True) -> None:
        self.rows.append(values)
        self.groups.append(group)
        self.ranked.append(ranked)

    def best(self) -> set[tuple[int, int]]:
        """(row, column) of the best value of each column within each group of ranked rows."""
        cells = set()
        for j, column in enumerate(self.columns):
            if not column.better:
                continue
            for group in dict.fromkeys(self.groups):
                candidates = [
                    (i, row[j])
                    for i, row in enumerate(self.rows)
                    if self.groups[i] == group and self.ranked[i] and isinstance(row[j], (int, float))
                ]
                if len(candidates) < 2:
                    continue
                pick = max if column.better == "max" else min
                target = pick(value for _, value in candidates)
                cells |= {(i, j) for i, value in candidates if value == target}
        return cells


def fmt(value, kind: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if kind == "int":
        return f"{value:,}"
    if kind == "params":
        return f"{value / 1e6:,.1f}M" if value >= 1e6 else f"{value:,}"
    if kind == "rate":
        return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}" if value >= 10 else f"{value:,.2f}"
    if kind in ("ms", "mb"):
        return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    if kind == "s":
        return f"{value / 60:.1f} min" if value >= 120 else f"{value:.1f} s"
    if kind == "pct":
        return f"{value:.2f}"
    if kind == "ratio":
        return f"{value:.2f}×"
    return str(value)


# ---------------------------------------------------------------------------------------------- tables
def tables(result: dict) -> list[ReportTable]:
    out = [speed_table(result), inference_table(result)]
    if result["accuracy"]:
        out.append(accuracy_table(result))
    out += [compare_table(result, entry) for entry in result["compare"]]
    return out


def _memory_name(result: dict) -> str:
    kinds = {m["peak_memory_mb"]["kind"] for m in result["models"]}
    return "peak CUDA MB" if kinds == {"cuda_max_allocated"} else "peak RSS MB"


def speed_table(result: dict) -> ReportTable:
    tasks = result["settings"]["tasks"]
    memory = _memory_name(result)
    columns = [Column("backbone"), Column("encoder params", "min", "params"), Column("head params", "", "int")]
    for task in tasks:
        columns += [
            Column(f"train {short(task)} tok/s", "max", "rate"),
            Column(f"train {short(task)} ex/s", "max", "rate"),
        ]
    columns += [Column(f"{memory} train", "min", "mb"), Column(f"{memory} inference", "min", "mb")]
    settings = result["settings"]
    table = ReportTable(
        "Training speed and size (joint model, all tasks)",
        columns,
        caption=f"batch {settings['batch_size']}, NER/cls length ≤ {settings['max_length']}, "
        f"QA windows ≤ {settings['qa_max_length']} (stride {settings['doc_stride']}); "
        f"median of {settings['repeats']} × {settings['steps']} steps after {settings['warmup']} warm-up; "
        f"tokens are real (non-pad) tokens; "
        + (
            "memory: the process's peak RSS in each phase (Python and torch included; the "
            "backbones run one after another in one process)"
            if memory == "peak RSS MB"
            else "memory: torch.cuda.max_memory_allocated in each phase"
        ),
    )
    for model in result["models"]:
        values = [model["backbone"], model["parameters"]["encoder"], model["parameters"]["heads"]]
        for task in tasks:
            values += [model["train"][task]["tokens_per_s"], model["train"][task]["examples_per_s"]]
        values += [model["peak_memory_mb"]["train"], model["peak_memory_mb"]["inference"]]
        table.add(values)
    return table


def inference_table(result: dict) -> ReportTable:
    sizes = sorted({int(b) for m in result["models"] for per_task in m["inference"].values() for b in per_task})
    columns = [Column("backbone"), Column("task")]
    for size in sizes:
        columns += [
            Column(f"bs{size} ex/s", "max", "rate"),
            Column(f"bs{size} tok/s", "max", "rate"),
            Column(f"bs{size} p50 ms", "min", "ms"),
            Column(f"bs{size} p95 ms", "min", "ms"),
        ]
    evaluated = sorted(
        {
            short(task)
            for m in result["models"]
            for task, per_size in m["inference"].items()
            if any(infer.get("path") == "evaluate" for infer in per_size.values())
        }
    )
    table = ReportTable(
        "Inference (the predict path: tokenization + forward + decoding; latency per request)",
        columns,
        caption=f"the first {result['settings']['infer_examples']} validation examples of each task as raw inputs "
        f"(NER: the sentence's words joined by spaces; QA: question and context, every window of it runs; "
        f"classification: the text), in requests of as many inputs as the batch size; each request is one "
        f"call of the task's predict on the model prepared for inference as `mtl predict-*` prepares it "
        f"(batch-invariant layers, width buckets); tok/s counts the real (non-pad) tokens the encoder ran on"
        + (
            f"; {', '.join(evaluated)}: the task's evaluate on features built beforehand (forward + decoding "
            f"+ scoring, no tokenization)"
            if evaluated
            else ""
        ),
    )
    for task in result["settings"]["tasks"]:
        for model in result["models"]:
            values = [model["backbone"], short(task)]
            for size in sizes:
                infer = model["inference"][task].get(str(size))
                values += [infer[k] if infer else None for k in ("examples_per_s", "tokens_per_s", "p50_ms", "p95_ms")]
            table.add(values, group=task)
    return table


def metric_columns(tasks: list[str]) -> list[tuple[str, str, str, object]]:
    """(task, metric key, heading, Metric) of each task's headline metrics."""
    columns = []
    for task in tasks:
        definition = registry.get(task)
        for metric in map(definition.metric, definition.headline_metrics):
            columns.append((task, metric.key, f"{definition.short_title} {metric.label}", metric))
    return columns


def accuracy_table(result: dict) -> ReportTable:
    tasks = result["settings"]["tasks"]
    shown = metric_columns(tasks)
    columns = [
        Column("backbone"),
        Column("epochs", "", "int"),
        Column("training time", "min", "s"),
        Column("validation time", "min", "s"),
    ] + [Column(heading, "max", "pct") for _, _, heading, _ in shown]
    first = result["accuracy"][0]
    sizes = ", ".join(f"{n:,} {short(t)}" for t, n in first["train_examples"].items())
    table = ReportTable(
        "Accuracy after a short fixed budget (validation sets)",
        columns,
        caption=f"train {sizes} examples, {first['epochs']} epoch(s), the same seed for every backbone",
    )
    for run in result["accuracy"]:
        values = [run["backbone"], run["epochs"], run["train_time_s"], run["eval_time_s"]]
        values += [metric_value(run["metrics"], task, key, factor) for task, key, _, factor in shown]
        table.add(values)
    return table


def metric_value(metrics: dict, task: str, key: str, metric):
    value = metrics.get(task, {}).get(key)
    return metric.percent(value) if value is not None else None


def compare_table(result: dict, entry: dict) -> ReportTable:
    tasks = result["settings"]["tasks"]
    shown = metric_columns(tasks)
    columns = [
        Column("model"),
        Column("parameters", "min", "params"),
        Column("training time", "min", "s"),
        Column("inference time", "min", "s"),
    ]
    columns += [Column(f"train {short(t)} tok/s", "max", "rate") for t in tasks]
    columns += [Column(heading, "max", "pct") for _, _, heading, _ in shown]
    budget = entry["budget"]
    sizes = " + ".join(f"{n:,} {short(t)}" for t, n in budget["train_examples"].items())
    valid = " + ".join(f"{n:,} {short(t)}" for t, n in budget["valid_examples"].items())
    table = ReportTable(
        f"Joint model vs one model per task: {entry['backbone']}",
        columns,
        caption=f"same budget for both: {sizes} training examples, {budget['epochs']} epoch(s), batch {budget['batch_size']}, "
        f"{budget['step_mode']} steps ({budget['sampling']}), seed {budget['seed']}; training time excludes "
        f"validation; inference time = predicting and scoring the validation sets ({valid}) of every task; "
        f"training tok/s: the joint and the single-task model on the same batches, in alternating repeats; "
        f"an untimed validation pass runs first, so that the first run does not pay one-off costs alone",
    )
    names = {
        "joint": f"joint ({'+'.join(short(t) for t in tasks)})",
        "single-task total": "single-task models together",
    }
    for row in entry["rows"]:
        name = names.get(row["model"]) or f"single-task {short(row['model'].removeprefix('single-'))}"
        values = [name, row["parameters"], row["train_time_s"], row["eval_time_s"]]
        values += [row["train_tokens_per_s"].get(t) for t in tasks]
        values += [metric_value(row["metrics"], task, key, factor) for task, key, _, factor in shown]
        table.add(values, ranked=row["model"] in ("joint", "single-task total"))
    ratios = entry["ratios"]
    values = ["joint ÷ single-task", ratios["parameters"], ratios["train_time"], ratios["inference_time"]]
    values += [ratios["train_tokens_per_s"].get(t) for t in tasks]
    values += [None] * len(shown)
    table.add([values[0]] + [fmt(v, "ratio") if v is not None else "" for v in values[1:]], ranked=False)
    return table


def machine_line(result: dict) -> str:
    m, s = result["machine"], result.get("settings", {})
    precision = f", precision {s['precision']}" if s.get("precision") else ""
    return (
        f"{m.get('cpu')}, {m.get('cores')} cores, torch threads {m.get('torch_threads')}, device {m.get('device')}"
        f"{precision}, torch {m.get('torch')}, transformers {m.get('transformers')}, Python {m.get('python')}"
    )


# ---------------------------------------------------------------------------------------------- Markdown, CSV
def markdown(result: dict) -> str:
    """The tables as Markdown, each with the machine and the command that produced it (for a README)."""
    lines = []
    if result.get("command"):
        lines += ["```bash", result["command"], "```", ""]
    lines += [f"Machine: {machine_line(result)}.", ""]
    for note in result["notes"]:
        lines.append(f"- {note}")
    lines.append("")
    for table in tables(result):
        best = table.best()
        lines += [f"**{table.title}**", ""]
        lines.append("| " + " | ".join(c.name for c in table.columns) + " |")
        lines.append("|" + "|".join("---" if c.kind == "text" else "---:" for c in table.columns) + "|")
        for i, row in enumerate(table.rows):
            cells = [fmt(v, c.kind) for v, c in zip(row, table.columns)]
            cells = [f"**{cell}**" if (i, j) in best else cell for j, cell in enumerate(cells)]
            lines.append("| " + " | ".join(cells) + " |")
        if table.caption:
            lines += ["", f"<sub>{table.caption}</sub>"]
        lines.append("")
    return "\n".join(lines)


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    return buffer.getvalue()
