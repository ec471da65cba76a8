"""`mtl benchmark`'s PNG bar chart: a pure function of the result dict of `run_benchmark`."""

from __future__ import annotations

from .report import fmt, machine_line, metric_columns, metric_value, short


def chart_png(result: dict) -> bytes:
    """Bar charts: training tokens/s and inference examples/s per task, parameters per backbone; with
    --compare the joint model against the single-task models; with --accuracy the metrics."""
    import numpy as np

    from ..plots import _figure, _png

    tasks = result["settings"]["tasks"]
    names = [m["backbone"] for m in result["models"]]
    panels = (
        ["train", "infer", "params"]
        + (["accuracy"] if result["accuracy"] else [])
        + ["compare", "metrics"] * len(result["compare"])
    )
    columns_, rows_ = min(len(panels), 3), -(-len(panels) // 3)
    figure = _figure(4.8 * columns_, 4.2 * rows_)
    axes = figure.subplots(rows_, columns_, squeeze=False).flatten()
    for unused in axes[len(panels) :]:
        unused.set_visible(False)
    colors = {"ner": "#4C72B0", "qa": "#DD8452", "cls": "#55A868"}
    pair_colors = {"joint model": "#4C72B0", "single-task models": "#BBBBBB"}

    def bars(ax, values_by_series: dict[str, list], labels: list[str], title: str, ylabel: str, series_colors=None):
        positions = np.arange(len(labels))
        width = 0.8 / max(len(values_by_series), 1)
        for k, (series, values) in enumerate(values_by_series.items()):
            drawn = ax.bar(
                positions - 0.4 + width * (k + 0.5),
                [v or 0 for v in values],
                width,
                label=series,
                color=(series_colors or {}).get(series),
            )
            ax.bar_label(drawn, labels=[fmt(v, "rate") if v is not None else "" for v in values], fontsize=7, padding=1)
        long = max(map(len, labels)) > 10
        ax.set_xticks(positions, labels, rotation=20 if long else 0, ha="right" if long else "center", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.margins(y=0.12)  # room for the value labels
        if len(values_by_series) > 1:
            ax.legend(fontsize=7, loc="best", framealpha=0.8)

    bars(
        axes[0],
        {short(t): [m["train"][t]["tokens_per_s"] for m in result["models"]] for t in tasks},
        names,
        "training throughput",
        "tokens/s (real tokens)",
        {short(t): c for t, c in colors.items()},
    )
    size = str(result["settings"]["batch_size"])
    bars(
        axes[1],
        {
            short(t): [m["inference"][t].get(size, m["inference"][t]["1"])["examples_per_s"] for m in result["models"]]
            for t in tasks
        },
        names,
        f"inference throughput (batch {size})",
        "inputs/s",
        {short(t): c for t, c in colors.items()},
    )
    bars(
        axes[2],
        {"encoder + heads": [m["parameters"]["total"] / 1e6 for m in result["models"]]},
        names,
        "parameters",
        "millions",
    )
    k = 3
    if result["accuracy"]:
        series = {
            heading: [metric_value(run["metrics"], t, key, f) for run in result["accuracy"]]
            for t, key, heading, f in metric_columns(tasks)
        }
        bars(axes[k], series, [run["backbone"] for run in result["accuracy"]], "validation metrics (short budget)", "%")
        k += 1
    for entry in result["compare"]:
        joint, total = entry["rows"][0], entry["rows"][-1]
        ratios = entry["ratios"]
        bars(
            axes[k],
            {
                "joint model": [100 * (ratios[key] or 0) for key in ("parameters", "train_time", "inference_time")],
                "single-task models": [100.0, 100.0, 100.0],
            },
            ["parameters", "training time", "inference time"],
            f"joint vs single-task: {entry['backbone']}",
            "% of the single-task models'",
            pair_colors,
        )
        axes[k].set_xlabel(
            f"params {fmt(joint['parameters'], 'params')} vs {fmt(total['parameters'], 'params')}, "
            f"training {fmt(joint['train_time_s'], 's')} vs {fmt(total['train_time_s'], 's')}",
            fontsize=7,
        )
        columns = metric_columns(tasks)
        bars(
            axes[k + 1],
            {
                "joint model": [metric_value(joint["metrics"], t, key, f) for t, key, _, f in columns],
                "single-task models": [metric_value(total["metrics"], t, key, f) for t, key, _, f in columns],
            },
            [heading for _, _, heading, _ in columns],
            f"validation metrics: {entry['backbone']}",
            "%",
            pair_colors,
        )
        k += 2
    figure.suptitle(f"mtl benchmark — {machine_line(result)}", fontsize=8)
    return _png(figure)
