"""The speed probes: the trainer's own Run for one backbone, its training step timed on batches of one task,
and its inference timed per batch size."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..config import TrainConfig
from .machine import sync
from .settings import Candidate, EventHandler, clamp_ids, phase


def build_run(config: TrainConfig, candidate: Candidate, workdir: Path, on_event: EventHandler, sizes: dict):
    """The trainer's own Run (data, features, model, optimizer, accelerate) for `config` on this backbone."""
    from ..training.trainer import Run

    out = Path(tempfile.mkdtemp(prefix="measure-", dir=workdir))
    config = config.replace(backbone=candidate.backbone, output_dir=str(out), save_every=0)

    def forward(event: str, data: dict) -> None:
        if event == "data":
            sizes.update({task: {"train": row["train"], "train_features": row["train_features"], "valid": row["valid"]}
                          for task, row in data.items()})
        elif event == "warning":
            on_event("note", data)

    run = Run(config, forward, overwrite=True, resume=False)
    if candidate.clamp is not None:
        for td in run.data.values():
            for features in (td.train_features, td.valid_features):
                if features is not None:
                    clamp_ids(features, candidate.vocab_size, candidate.clamp)
    return run


def parameters(run, tasks: list[str]) -> dict:
    counts_ = run.core.parameter_counts()
    heads = {task: counts_[task] for task in tasks}
    return {"encoder": counts_["encoder"], "heads": sum(heads.values()), "per_head": heads,
            "total": counts_["encoder"] + sum(heads.values())}


class TrainingProbe:
    """Runs and times the trainer's own step (`Run.train_step`) on batches of one task, counting what the step
    reports (real tokens, examples) and the encoder's forward passes of every step."""

    def __init__(self, run, task: str):
        self.run, self.task = run, task
        self.batches: list[dict] = []  # per step: the task's {"loss", "tokens", "examples"} as train_step returns it
        self.passes = 0
        self.repeats: list[dict] = []
        self.hook = run.core.encoder.register_forward_hook(self._count_pass)

    def _count_pass(self, *args) -> None:
        self.passes += 1

    def step(self) -> None:
        self.batches.append(self.run.train_step((self.task,), last=False)[self.task])

    def timed(self, steps: int, after_step: Callable[[], None] = lambda: None) -> None:
        device = self.run.accelerator.device
        sync(device)
        first, passes = len(self.batches), self.passes
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
            after_step()
        sync(device)
        seconds = time.perf_counter() - start
        batches = self.batches[first:]
        self.repeats.append({"seconds": seconds, "tokens": sum(b["tokens"] for b in batches),
                             "examples": sum(b["examples"] for b in batches), "batches": len(batches),
                             "encoder_passes": self.passes - passes})

    def close(self) -> None:
        self.hook.remove()

    def summary(self) -> dict:
        repeats = self.repeats
        batches = sum(r["batches"] for r in repeats)
        return {
            "tokens_per_s": statistics.median(r["tokens"] / r["seconds"] for r in repeats),
            "examples_per_s": statistics.median(r["examples"] / r["seconds"] for r in repeats),
            "step_s": statistics.median(r["seconds"] / r["batches"] for r in repeats),
            "tokens_per_batch": sum(r["tokens"] for r in repeats) / batches,
            "encoder_passes_per_batch": sum(r["encoder_passes"] for r in repeats) / batches,
            "repeats": repeats,
        }


def measure_training(run, task: str, counts_: dict, name: str, on_event: EventHandler) -> dict:
    """Training steps of one task's batches: warm-up, then `repeats` × `steps` timed steps; medians."""
    probe = TrainingProbe(run, task)
    advance = phase(on_event, f"{name}: training {task.upper()}", counts_["warmup"] + counts_["repeats"] * counts_["steps"])
    try:
        for _ in range(counts_["warmup"]):
            probe.step()
            advance()
        for _ in range(counts_["repeats"]):
            probe.timed(counts_["steps"], advance)
    finally:
        probe.close()
    return probe.summary()


def measure_inference(run, task: str, counts_: dict, name: str, on_event: EventHandler) -> dict:
    """Per batch size (1 and the config's): examples/s, tokens/s and p50/p95 latency per batch."""
    import numpy as np

    from ..inference.forward import forward_batches

    td = run.data[task]
    features = td.valid_features if td.valid_features is not None and len(td.valid_features) else td.train_features
    inputs = features.first(counts_["infer_examples"])
    model, device, autocast = run.core, run.accelerator.device, run.accelerator.autocast
    sizes = sorted({1, run.config.batch_size})
    advance = phase(on_event, f"{name}: inference {task.upper()}", len(sizes) * len(inputs))
    results = {}
    for batch_size in sizes:
        for _ in forward_batches(model, task, inputs.first(batch_size), batch_size, device, autocast):
            pass  # warm-up
        latencies, tokens, examples = [], 0, 0
        start = time.perf_counter()
        for rows, _, lengths in forward_batches(model, task, inputs, batch_size, device, autocast):
            latencies.append(time.perf_counter() - start)  # the outputs are on the CPU already: synchronized
            tokens += int(lengths.sum())
            examples += len(rows)
            advance(len(rows))
            start = time.perf_counter()
        seconds = sum(latencies)
        results[str(batch_size)] = {
            "examples_per_s": examples / seconds, "tokens_per_s": tokens / seconds,
            "p50_ms": float(np.percentile(latencies, 50)) * 1000, "p95_ms": float(np.percentile(latencies, 95)) * 1000,
            "batches": len(latencies), "examples": examples,
        }
    return results
