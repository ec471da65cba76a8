"""The benchmark's results as flat rows (one per measured model), for CSV."""

from __future__ import annotations

from .. import tasks as registry

MACHINE_COLUMNS = ("cpu", "cores", "torch_threads", "torch", "device")


def csv_rows(result: dict) -> list[dict]:
    """One row per measured model, the machine description in every row: the joint model of each backbone
    (section "speed", with its --accuracy run's times and metrics), then with --compare the rows of each
    comparison (section "compare": joint, each single-task model, the single-task models together)."""
    machine_ = {f"machine_{key}": result["machine"].get(key) for key in MACHINE_COLUMNS}
    precision = result["settings"].get("precision")
    tasks = result["settings"]["tasks"]
    runs = {r["backbone"]: r for r in result["accuracy"]}

    def add_metrics(row: dict, metrics: dict) -> None:
        for task, scores in metrics.items():
            for metric in registry.get(task).metrics:
                row[f"{task}_{metric.key}"] = scores.get(metric.key)

    rows = []
    for model in result["models"]:
        p = model["parameters"]
        row = {
            "section": "speed",
            "backbone": model["backbone"],
            "model": model["model"],
            "tasks": "+".join(model["tasks"]),
            "params_encoder": p["encoder"],
            "params_heads": p["heads"],
            "params_total": p["total"],
        }
        for task in tasks:
            row[f"train_{task}_tokens_per_s"] = model["train"][task]["tokens_per_s"]
            row[f"train_{task}_examples_per_s"] = model["train"][task]["examples_per_s"]
            for batch_size, infer in sorted(model["inference"][task].items(), key=lambda kv: int(kv[0])):
                size = "bs1" if batch_size == "1" else "bsN"
                row[f"infer_{task}_{size}"] = int(batch_size)
                for key in ("examples_per_s", "tokens_per_s", "p50_ms", "p95_ms"):
                    row[f"infer_{task}_{size}_{key}"] = infer[key]
        row["peak_train_mb"] = model["peak_memory_mb"]["train"]
        row["peak_inference_mb"] = model["peak_memory_mb"]["inference"]
        row["memory_kind"] = model["peak_memory_mb"]["kind"]
        run = runs.get(model["backbone"])
        if run:
            row["train_time_s"], row["eval_time_s"] = run["train_time_s"], run["eval_time_s"]
            add_metrics(row, run["metrics"])
        rows.append(row | {"precision": model["precision"]})
    for entry in result["compare"]:
        for compared in entry["rows"]:
            row = {
                "section": "compare",
                "backbone": entry["backbone"],
                "model": compared["model"],
                "tasks": "+".join(compared["tasks"]),
                "params_total": compared["parameters"],
            }
            for task in compared["tasks"]:
                row[f"train_{task}_tokens_per_s"] = compared["train_tokens_per_s"][task]
                row[f"train_{task}_examples_per_s"] = compared["train_examples_per_s"][task]
            row["train_time_s"], row["eval_time_s"] = compared["train_time_s"], compared["eval_time_s"]
            add_metrics(row, compared["metrics"])
            rows.append(row | {"precision": precision})
    rows = [row | machine_ for row in rows]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return [{key: row.get(key) for key in columns} for row in rows]
