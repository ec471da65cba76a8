"""Real training runs: a backbone trained and validated on the config's budget (--accuracy), and the joint
model against one model per task on the same budget (--compare single-task), with their training speed
timed side by side on the very same batches."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .. import tasks as registry
from ..config import TrainConfig
from ..errors import InputError, TrainingInterrupted
from .machine import release_memory
from .probes import TrainingProbe, build_run, parameters
from .settings import Candidate, EventHandler, phase


def train_and_evaluate(
    config: TrainConfig, candidate: Candidate, workdir: Path, on_event: EventHandler, kind: str = "joint"
) -> dict:
    """A real `train()` run on the config's budget; its last validation gives the metrics."""
    from ..training.trainer import train

    if candidate.clamp is not None:
        raise InputError(
            f"{candidate.label}: --accuracy and --compare train on the tokenizer's ids, which do not fit "
            f"its vocabulary of {candidate.vocab_size:,}: choose a --tokenizer that fits"
        )
    out = Path(tempfile.mkdtemp(prefix="train-", dir=workdir))
    config = config.replace(backbone=candidate.backbone, output_dir=str(out), save_every=0, keep_checkpoints=1)
    name = f"{candidate.label} ({kind})"
    info: dict = {"data": {}}
    on_event("phase", {"label": f"{name}: preparing a {config.epochs}-epoch training run", "total": None})

    def forward(event: str, data: dict) -> None:
        if event == "data":
            info["data"] = {
                task: {"train": row["train"], "train_features": row["train_features"], "valid": row["valid"]}
                for task, row in data.items()
            }
        elif event == "start":
            info["parameters"] = data["parameters"]
            info["steps"] = data["steps_per_epoch"] * data["epochs"]
            on_event(
                "phase", {"label": f"{name}: training {config.epochs} epoch(s) + validation", "total": info["steps"]}
            )
        elif event == "step":
            on_event("advance", {"completed": (data["epoch"] - 1) * data["steps"] + data["step"]})
        elif event == "warning":
            on_event("note", data)

    try:
        result = train(config, forward, overwrite=True)
    except TrainingInterrupted:  # its resumable state is in a temporary directory: nothing to resume
        raise KeyboardInterrupt from None
    history = result.history
    last = history[-1] if history else {}
    parameters_ = info.get("parameters", {})
    shutil.rmtree(out, ignore_errors=True)  # checkpoints of every size: the disk is not the benchmark's
    return {
        "backbone": candidate.label,
        "model": kind,
        "tasks": config.tasks(),
        "parameters": sum(parameters_.values()),
        "epochs": len(history),
        "steps": info.get("steps", 0),
        "train_examples": {task: row["train"] for task, row in info["data"].items()},
        "valid_examples": {task: row["valid"] for task, row in info["data"].items()},
        "train_time_s": sum(h["epoch_time_s"] for h in history),
        "eval_time_s": last.get("eval_time_s", 0.0),
        "metrics": last.get("valid", {}),
    }


def only(config: TrainConfig, task: str) -> TrainConfig:
    """The config with the data of `task` alone."""
    return config.replace(**{f"{t}_{split}": "" for t in registry.names() if t != task for split in ("train", "valid")})


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def paired_training_speed(
    config: TrainConfig, candidate: Candidate, counts_: dict, workdir: Path, on_event: EventHandler
) -> dict:
    """Training throughput of the joint model and of the single-task model on the very same batches of each
    task, timed in alternating repeats (joint first, then single first, ...), so that a drifting machine load
    weighs on both alike. The ratio is what says whether the joint step costs one encoder pass per batch."""
    tasks = config.tasks()
    name = f"{candidate.label} (joint vs single-task)"
    on_event("phase", {"label": f"{name}: building the models", "total": None})
    joint = build_run(config, candidate, workdir, on_event, {})
    results = {}
    try:
        for task in tasks:
            single = build_run(only(config, task), candidate, workdir, on_event, {})
            probes = {"joint": TrainingProbe(joint, task), "single": TrainingProbe(single, task)}
            advance = phase(
                on_event,
                f"{name}: training {task.upper()}, alternating",
                2 * (counts_["warmup"] + counts_["repeats"] * counts_["steps"]),
            )
            try:
                for probe in probes.values():
                    for _ in range(counts_["warmup"]):
                        probe.step()
                        advance()
                for r in range(counts_["repeats"]):
                    for key in ("joint", "single") if r % 2 == 0 else ("single", "joint"):
                        probes[key].timed(counts_["steps"], advance)
            finally:
                for probe in probes.values():
                    probe.close()
            summaries = {key: probe.summary() for key, probe in probes.items()}
            summaries["single"]["parameters"] = parameters(single, [task])["total"]
            summaries["joint"]["parameters"] = parameters(joint, tasks)["total"]
            results[task] = summaries | {
                "ratio": ratio(summaries["joint"]["tokens_per_s"], summaries["single"]["tokens_per_s"])
            }
            del single, probes
            release_memory()
        warm_up_validation(joint, name, on_event)
    finally:
        del joint
        release_memory()
    return results


def warm_up_validation(run, name: str, on_event: EventHandler) -> None:
    """One untimed pass over the validation sets: the first timed run (the joint model's) would otherwise pay
    alone for one-off costs (kernels built for each new batch shape) that the later runs find ready."""
    tasks = [task for task, td in run.data.items() if td.valid]
    on_event("phase", {"label": f"{name}: warming up (one untimed validation pass)", "total": len(tasks)})
    for i, task in enumerate(tasks, 1):
        td = run.data[task]
        registry.get(task).evaluate(
            run.core, td.valid, td.valid_features, run.config.eval_batch_size, run.accelerator.device, run.autocast, {}
        )
        on_event("advance", {"completed": i})


def compare_single_task(
    config: TrainConfig, candidate: Candidate, counts_: dict, workdir: Path, on_event: EventHandler
) -> tuple[dict, dict]:
    """The joint model against one model per task: the same data, epochs, batch size and seed for both.
    Returns the comparison and the joint model's training run."""
    tasks = config.tasks()
    speed = paired_training_speed(config, candidate, counts_, workdir, on_event)
    joint_run = train_and_evaluate(config, candidate, workdir, on_event)
    runs = {
        task: train_and_evaluate(only(config, task), candidate, workdir, on_event, kind=f"single-{task}")
        for task in tasks
    }

    def row(model: str, side: str, model_runs: list[dict], row_tasks: list[str]) -> dict:
        return {
            "model": model,
            "tasks": row_tasks,
            "parameters": sum(r["parameters"] for r in model_runs),
            "train_time_s": sum(r["train_time_s"] for r in model_runs),
            "eval_time_s": sum(r["eval_time_s"] for r in model_runs),
            "train_tokens_per_s": {t: speed[t][side]["tokens_per_s"] for t in row_tasks},
            "train_examples_per_s": {t: speed[t][side]["examples_per_s"] for t in row_tasks},
            "encoder_passes_per_batch": {t: speed[t][side]["encoder_passes_per_batch"] for t in row_tasks},
            "metrics": {t: r["metrics"][t] for r in model_runs for t in r["metrics"] if t in row_tasks},
        }

    joint_row = row("joint", "joint", [joint_run], tasks)
    total = row("single-task total", "single", [runs[t] for t in tasks], tasks)
    return {
        "backbone": candidate.label,
        "order": ["paired training speed", "untimed validation pass", "joint", *[f"single-{t}" for t in tasks]],
        "budget": {
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "step_mode": config.step_mode,
            "sampling": config.sampling,
            "seed": config.seed,
            "train_examples": joint_run["train_examples"],
            "valid_examples": joint_run["valid_examples"],
        },
        "rows": [joint_row, *[row(f"single-{t}", "single", [runs[t]], [t]) for t in tasks], total],
        "ratios": {  # joint ÷ the single-task models together
            "parameters": ratio(joint_row["parameters"], total["parameters"]),
            "train_time": ratio(joint_row["train_time_s"], total["train_time_s"]),
            "inference_time": ratio(joint_row["eval_time_s"], total["eval_time_s"]),
            "train_tokens_per_s": {t: speed[t]["ratio"] for t in tasks},
        },
        "paired_training_speed": speed,
    }, joint_run
