"""The run's records — one per step (losses, learning rate, task weights, tokens/s), one per epoch (validation
metrics) — written to metrics.jsonl and training_metrics.csv (one row per epoch), and to the experiment trackers
of `report_to` (TensorBoard, MLflow) through accelerate's tracker integration, as scalars at the global step.

Trackers write locally by default: TensorBoard event files under the run's tb/, MLflow runs in ./mlruns (a file
store) unless MLFLOW_TRACKING_URI names another."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
from pathlib import Path

from ..errors import InputError
from ..fileio import write_atomic

# tracker -> (the modules any of which it needs, the mtl extra that installs one)
TRACKER_PACKAGES = {"tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"), "mlflow": (("mlflow",), "mlflow")}
TENSORBOARD_DIR = "tb"
PROJECT = "mtl"  # the MLflow experiment (MLFLOW_EXPERIMENT_NAME wins) and the folder under tb/
# tag prefix per record type; epoch records keep their own names (valid/ner/f1, train_loss/qa, ...)
TAG_PREFIX = {"step": "train/", "epoch": "", "interference": "interference/"}


def flatten(record: dict, prefix: str = "", sep: str = "_") -> dict:
    """{"valid": {"ner": {"f1": 0.9}}} → {"valid_ner_f1": 0.9}; nested tables (per type, confusion) left out."""
    flat = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if key not in ("per_type", "per_class", "confusion"):
                flat |= flatten(value, f"{name}{sep}", sep)
        elif not isinstance(value, list):
            flat[name] = value
    return flat


def trackers(report_to: str) -> list[str]:
    """The trackers of a `report_to` value ("tensorboard,mlflow", "none"), each checked to be installed."""
    names = [name for name in dict.fromkeys(report_to.split(",")) if name not in ("", "none")]
    for name in names:
        modules, extra = TRACKER_PACKAGES[name]
        if not any(importlib.util.find_spec(module) for module in modules):
            raise InputError(f"--report-to {name} needs the {modules[0]} package: pip install 'mtl[{extra}]'")
    return names


def tracker_options(names: list[str], run_dir: Path) -> dict:
    """accelerate.Accelerator's keyword arguments for these trackers."""
    if not names:
        return {}
    from accelerate.utils import ProjectConfiguration

    return {
        "log_with": names,
        "project_config": ProjectConfiguration(project_dir=str(run_dir), logging_dir=str(run_dir / TENSORBOARD_DIR)),
    }


class MetricsLog:
    def __init__(self, directory: Path):
        self.jsonl = directory / "metrics.jsonl"
        self.csv = directory / "training_metrics.csv"
        self.rows: list[dict] = []
        self.accelerator = None  # with trackers started: each record goes to them too

    def start_trackers(self, accelerator, hyperparameters: dict, first_step: int) -> None:
        """Open the runs of the accelerator's trackers, the config as their hyperparameters. A resumed run
        (`first_step` > 1) hides TensorBoard's events from first_step on: those steps are replayed."""
        names = [str(tracker) for tracker in accelerator.log_with]
        if not names:
            return
        if "mlflow" in names and "MLFLOW_TRACKING_URI" not in os.environ:
            import mlflow

            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow 3 keeps it for offline use, with a flag
            mlflow.set_tracking_uri(Path("mlruns").resolve().as_uri())
        settings = {"mlflow": {"run_name": self.jsonl.parent.name}}
        if first_step > 1:
            settings["tensorboard"] = {"purge_step": first_step}
        accelerator.init_trackers(PROJECT, config=hyperparameters, init_kwargs=settings)
        self.accelerator = accelerator

    def finish(self) -> None:
        if self.accelerator is not None:
            for tracker in self.accelerator.trackers:
                tracker.finish()
            self.accelerator.trackers.clear()
            self.accelerator = None

    def size(self) -> int:
        return self.jsonl.stat().st_size if self.jsonl.exists() else 0

    def restore(self, size: int, history: list[dict]) -> None:
        """Back to the state of a checkpoint: records written after it are dropped (they will be replayed)."""
        if self.jsonl.exists():
            with open(self.jsonl, "r+b") as handle:
                handle.truncate(size)
        self.rows = [flatten(record) for record in history]

    def write(self, record: dict, step: int) -> None:
        """One record (its "type" says which) after `step` optimizer-loop steps of the run."""
        with open(self.jsonl, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        if self.accelerator is not None:
            values = {key: value for key, value in record.items() if key != "type"}
            scalars = flatten(values, TAG_PREFIX[record["type"]], "/")
            self.accelerator.log({k: v for k, v in scalars.items() if isinstance(v, (int, float))}, step=step)

    def step(self, progress: dict, step: int) -> None:
        self.write({"type": "step"} | progress, step)

    def interference(self, cosines: dict, epoch: int, step: int) -> None:
        self.write({"type": "interference", "step": step, "epoch": epoch, "cosine": cosines}, step)

    def epoch(self, record: dict, step: int) -> None:
        self.write({"type": "epoch"} | record, step)
        self.rows.append(flatten(record))
        self._write_csv()

    def _write_csv(self) -> None:
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomic(self.csv, buffer.getvalue())
