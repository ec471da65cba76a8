"""PNG plots for evaluation reports: a confusion matrix and a training run's learning curves.

matplotlib is imported inside the functions, and through its object-oriented API with the Agg canvas
only: no pyplot, so no global backend is switched (a notebook importing mtlcli keeps its own).
Each function returns the PNG as bytes; the caller writes it (atomically).
"""

from __future__ import annotations

import io

ANNOTATE_UP_TO = 25  # labels; beyond that the counts would not be readable in the cells


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def confusion_png(labels: list[str], matrix: list[list[int]], title: str = "confusion matrix") -> bytes:
    """Rows gold, columns predicted; colour is the share of the gold row (so rare classes show too),
    the cell text is the count."""
    import numpy as np

    counts = np.asarray(matrix, dtype=float).reshape(len(labels), len(labels))
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = min(4 + 0.45 * len(labels), 30)
    figure = _figure(size + 1.5, size)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="share of gold row", shrink=0.8)
    axes.set_xticks(
        range(len(labels)), labels, rotation=90 if len(labels) > 8 else 0, fontsize=8 if len(labels) > 25 else 10
    )
    axes.set_yticks(range(len(labels)), labels, fontsize=8 if len(labels) > 25 else 10)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    axes.set_title(title)
    if len(labels) <= ANNOTATE_UP_TO:
        for i in range(len(labels)):
            for j in range(len(labels)):
                if counts[i, j]:
                    axes.text(
                        j,
                        i,
                        f"{int(counts[i, j])}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black",
                    )
    return _png(figure)


def learning_curves_png(records: list[dict], title: str = "learning curves") -> bytes:
    """From metrics.jsonl "epoch" records: training loss per task (left), validation metrics in % (right):
    each task's headline metrics (mtlcli.tasks)."""
    from . import tasks as registry

    epochs = [record.get("epoch", i + 1) for i, record in enumerate(records)]
    tasks = list(dict.fromkeys(task for record in records for task in record.get("train_loss", {})))
    has_valid = any(record.get("valid") for record in records)
    figure = _figure(11 if has_valid else 6, 4)
    axes = figure.subplots(1, 2 if has_valid else 1, squeeze=False)[0]
    for task in tasks:
        points = [(e, r["train_loss"][task]) for e, r in zip(epochs, records) if task in r.get("train_loss", {})]
        axes[0].plot(*zip(*points), marker="o", label=task)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("training loss")
    axes[0].set_title("training loss")
    if tasks:
        axes[0].legend()
    if has_valid:
        for task in tasks:
            definition = registry.get(task)
            for metric in map(definition.metric, definition.headline_metrics):
                points = [
                    (e, metric.percent(r["valid"][task][metric.key]))
                    for e, r in zip(epochs, records)
                    if metric.key in r.get("valid", {}).get(task, {})
                ]
                if points:
                    axes[1].plot(*zip(*points), marker="o", label=f"{definition.title} {metric.label}")
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("%")
        axes[1].set_title("validation")
        axes[1].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
    figure.suptitle(title)
    return _png(figure)
