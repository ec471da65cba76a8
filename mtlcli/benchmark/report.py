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
                candidates = [(i, row[j]) for i, row in enumerate(self.rows)
                              if self.groups[i] == group and self.ranked[i] and isinstance(row[j], (int, float))]
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
        columns += [Column(f"train {short(task)} tok/s", "max", "rate"), Column(f"train {short(task)} ex/s", "max", "rate")]
    columns += [Column(f"{memory} train", "min", "mb"), Column(f"{memory} inference", "min", "mb")]
    settings = result["settings"]
    table = ReportTable("Training speed and size (joint model, all tasks)", columns,
                        caption=f"batch {settings['batch_size']}, NER/cls length ≤ {settings['max_length']}, "
                                f"QA windows ≤ {settings['qa_max_length']} (stride {settings['doc_stride']}); "
                                f"median of {settings['repeats']} × {settings['steps']} steps after {settings['warmup']} warm-up; "
                                f"tokens are real (non-pad) tokens; " + (
                                    "memory: the process's peak RSS in each phase (Python and torch included; the "
                                    "backbones run one after another in one process)" if memory == "peak RSS MB"
                                    else "memory: torch.cuda.max_memory_allocated in each phase"))
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
        columns += [Column(f"bs{size} ex/s", "max", "rate"), Column(f"bs{size} tok/s", "max", "rate"),
                    Column(f"bs{size} p50 ms", "min", "ms"), Column(f"bs{size} p95 ms", "min", "ms")]
    evaluated = sorted({short(task) for m in result["models"] for task, per_size in m["inference"].items()
                        if any(infer.get("path") == "evaluate" for infer in per_size.values())})
    table = ReportTable(
        "Inference (the predict path: tokenization + forward + decoding; latency per request)", columns,
        caption=f"the first {result['settings']['infer_examples']} validation examples of each task as raw inputs "
                f"(NER: the sentence's words joined by spaces; QA: question and context, every window of it runs; "
                f"classification: the text), in requests of as many inputs as the batch size; each request is one "
                f"call of the task's predict on the model prepared for inference as `mtl predict-*` prepares it "
                f"(batch-invariant layers, width buckets); tok/s counts the real (non-pad) tokens the encoder ran on"
                + (f"; {', '.join(evaluated)}: the task's evaluate on features built beforehand (forward + decoding "
                   f"+ scoring, no tokenization)" if evaluated else ""))
    for task in result["settings"]["tasks"]:
        for model in result["models"]:
            values = [model["backbone"], short(task)]
            for size in sizes:
                infer = model["inference"][task].get(str(size))
                values += [infer[k] if infer else None for k in ("examples_per_s", "tokens_per_s", "p50_ms", "p95_ms")]
            table.add(values, group=task)
    return table


def _metric_columns(tasks: list[str]) -> list[tuple[str, str, str, object]]:
    """(task, metric key, heading, Metric) of each task's headline metrics."""
    columns = []
    for task in tasks:
        definition = registry.get(task)
        for metric in map(definition.metric, definition.headline_metrics):
            columns.append((task, metric.key, f"{definition.short_title} {metric.label}", metric))
    return columns


def accuracy_table(result: dict) -> ReportTable:
    tasks = result["settings"]["tasks"]
    metric_columns = _metric_columns(tasks)
    columns = [Column("backbone"), Column("epochs", "", "int"), Column("training time", "min", "s"),
               Column("validation time", "min", "s")] + [Column(heading, "max", "pct") for _, _, heading, _ in metric_columns]
    first = result["accuracy"][0]
    sizes = ", ".join(f"{n:,} {short(t)}" for t, n in first["train_examples"].items())
    table = ReportTable("Accuracy after a short fixed budget (validation sets)", columns,
                        caption=f"train {sizes} examples, {first['epochs']} epoch(s), the same seed for every backbone")
    for run in result["accuracy"]:
        values = [run["backbone"], run["epochs"], run["train_time_s"], run["eval_time_s"]]
        values += [_metric(run["metrics"], task, key, factor) for task, key, _, factor in metric_columns]
        table.add(values)
    return table


def _metric(metrics: dict, task: str, key: str, metric):
    value = metrics.get(task, {}).get(key)
    return metric.percent(value) if value is not None else None


def compare_table(result: dict, entry: dict) -> ReportTable:
    tasks = result["settings"]["tasks"]
    metric_columns = _metric_columns(tasks)
    columns = [Column("model"), Column("parameters", "min", "params"), Column("training time", "min", "s"),
               Column("inference time", "min", "s")]
    columns += [Column(f"train {short(t)} tok/s", "max", "rate") for t in tasks]
    columns += [Column(heading, "max", "pct") for _, _, heading, _ in metric_columns]
    budget = entry["budget"]
    sizes = " + ".join(f"{n:,} {short(t)}" for t, n in budget["train_examples"].items())
    valid = " + ".join(f"{n:,} {short(t)}" for t, n in budget["valid_examples"].items())
    table = ReportTable(
        f"Joint model vs one model per task: {entry['backbone']}", columns,
        caption=f"same budget for both: {sizes} training examples, {budget['epochs']} epoch(s), batch {budget['batch_size']}, "
                f"{budget['step_mode']} steps ({budget['sampling']}), seed {budget['seed']}; training time excludes "
                f"validation; inference time = predicting and scoring the validation sets ({valid}) of every task; "
                f"training tok/s: the joint and the single-task model on the same batches, in alternating repeats; "
                f"an untimed validation pass runs first, so that the first run does not pay one-off costs alone")
    names = {"joint": f"joint ({'+'.join(short(t) for t in tasks)})", "single-task total": "single-task models together"}
    for row in entry["rows"]:
        name = names.get(row["model"]) or f"single-task {short(row['model'].removeprefix('single-'))}"
        values = [name, row["parameters"], row["train_time_s"], row["eval_time_s"]]
        values += [row["train_tokens_per_s"].get(t) for t in tasks]
        values += [_metric(row["metrics"], task, key, factor) for task, key, _, factor in metric_columns]
        table.add(values, ranked=row["model"] in ("joint", "single-task total"))
    ratios = entry["ratios"]
    values = ["joint ÷ single-task", ratios["parameters"], ratios["train_time"], ratios["inference_time"]]
    values += [ratios["train_tokens_per_s"].get(t) for t in tasks]
    values += [None] * len(metric_columns)
    table.add([values[0]] + [fmt(v, "ratio") if v is not None else "" for v in values[1:]], ranked=False)
    return table


def machine_line(result: dict) -> str:
    m, s = result["machine"], result.get("settings", {})
    precision = f", precision {s['precision']}" if s.get("precision") else ""
    return (f"{m.get('cpu')}, {m.get('cores')} cores, torch threads {m.get('torch_threads')}, device {m.get('device')}"
            f"{precision}, torch {m.get('torch')}, transformers {m.get('transformers')}, Python {m.get('python')}")


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


# ---------------------------------------------------------------------------------------------- chart
def chart_png(result: dict) -> bytes:
    """Bar charts: training tokens/s and inference examples/s per task, parameters per backbone; with
    --compare the joint model against the single-task models; with --accuracy the metrics."""
    import numpy as np

    from ..plots import _figure, _png

    tasks = result["settings"]["tasks"]
    names = [m["backbone"] for m in result["models"]]
    panels = ["train", "infer", "params"] + (["accuracy"] if result["accuracy"] else []) + ["compare", "metrics"] * len(result["compare"])
    columns_, rows_ = min(len(panels), 3), -(-len(panels) // 3)
    figure = _figure(4.8 * columns_, 4.2 * rows_)
    axes = figure.subplots(rows_, columns_, squeeze=False).flatten()
    for unused in axes[len(panels):]:
        unused.set_visible(False)
    colors = {"ner": "#4C72B0", "qa": "#DD8452", "cls": "#55A868"}
    pair_colors = {"joint model": "#4C72B0", "single-task models": "#BBBBBB"}

    def bars(ax, values_by_series: dict[str, list], labels: list[str], title: str, ylabel: str, series_colors=None):
        positions = np.arange(len(labels))
        width = 0.8 / max(len(values_by_series), 1)
        for k, (series, values) in enumerate(values_by_series.items()):
            drawn = ax.bar(positions - 0.4 + width * (k + 0.5), [v or 0 for v in values], width, label=series,
                           color=(series_colors or {}).get(series))
            ax.bar_label(drawn, labels=[fmt(v, "rate") if v is not None else "" for v in values], fontsize=7, padding=1)
        long = max(map(len, labels)) > 10
        ax.set_xticks(positions, labels, rotation=20 if long else 0, ha="right" if long else "center", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.margins(y=0.12)  # room for the value labels
        if len(values_by_series) > 1:
            ax.legend(fontsize=7, loc="best", framealpha=0.8)

    bars(axes[0], {short(t): [m["train"][t]["tokens_per_s"] for m in result["models"]] for t in tasks}, names,
         "training throughput", "tokens/s (real tokens)", {short(t): c for t, c in colors.items()})
    size = str(result["settings"]["batch_size"])
    bars(axes[1], {short(t): [m["inference"][t].get(size, m["inference"][t]["1"])["examples_per_s"] for m in result["models"]]
                   for t in tasks}, names, f"inference throughput (batch {size})", "inputs/s",
         {short(t): c for t, c in colors.items()})
    bars(axes[2], {"encoder + heads": [m["parameters"]["total"] / 1e6 for m in result["models"]]}, names,
         "parameters", "millions")
    k = 3
    if result["accuracy"]:
        series = {heading: [_metric(run["metrics"], t, key, f) for run in result["accuracy"]] for t, key, heading, f in _metric_columns(tasks)}
        bars(axes[k], series, [run["backbone"] for run in result["accuracy"]], "validation metrics (short budget)", "%")
        k += 1
    for entry in result["compare"]:
        joint, total = entry["rows"][0], entry["rows"][-1]
        ratios = entry["ratios"]
        bars(axes[k], {"joint model": [100 * (ratios[key] or 0) for key in ("parameters", "train_time", "inference_time")],
                       "single-task models": [100.0, 100.0, 100.0]}, ["parameters", "training time", "inference time"],
             f"joint vs single-task: {entry['backbone']}", "% of the single-task models'", pair_colors)
        axes[k].set_xlabel(f"params {fmt(joint['parameters'], 'params')} vs {fmt(total['parameters'], 'params')}, "
                           f"training {fmt(joint['train_time_s'], 's')} vs {fmt(total['train_time_s'], 's')}", fontsize=7)
        columns = _metric_columns(tasks)
        bars(axes[k + 1], {"joint model": [_metric(joint["metrics"], t, key, f) for t, key, _, f in columns],
                           "single-task models": [_metric(total["metrics"], t, key, f) for t, key, _, f in columns]},
             [heading for _, _, heading, _ in columns], f"validation metrics: {entry['backbone']}", "%", pair_colors)
        k += 2
    figure.suptitle(f"mtl benchmark — {machine_line(result)}", fontsize=8)
    return _png(figure)
