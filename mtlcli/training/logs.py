"""metrics.jsonl (one JSON object per line, step and epoch records) and training_metrics.csv (one row per epoch)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..fileio import write_atomic


def flatten(record: dict, prefix: str = "") -> dict:
    """{"valid": {"ner": {"f1": 0.9}}} → {"valid_ner_f1": 0.9}; nested tables (per type, confusion) left out."""
    flat = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if key not in ("per_type", "per_class", "confusion"):
                flat |= flatten(value, f"{name}_")
        elif not isinstance(value, list):
            flat[name] = value
    return flat


class MetricsLog:
    def __init__(self, directory: Path):
        self.jsonl = directory / "metrics.jsonl"
        self.csv = directory / "training_metrics.csv"
        self.rows: list[dict] = []

    def size(self) -> int:
        return self.jsonl.stat().st_size if self.jsonl.exists() else 0

    def restore(self, size: int, history: list[dict]) -> None:
        """Back to the state of a checkpoint: records written after it are dropped (they will be replayed)."""
        if self.jsonl.exists():
            with open(self.jsonl, "r+b") as handle:
                handle.truncate(size)
        self.rows = [flatten(record) for record in history]

    def write(self, record: dict) -> None:
        with open(self.jsonl, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")

    def step(self, progress: dict) -> None:
        self.write({"type": "step"} | progress)

    def epoch(self, record: dict) -> None:
        self.write({"type": "epoch"} | record)
        self.rows.append(flatten(record))
        self._write_csv()

    def _write_csv(self) -> None:
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomic(self.csv, buffer.getvalue())
