"""`mtl benchmark`'s engine: parameters, training and inference speed, peak memory and (optionally) accuracy
of several backbones on the same inputs, and the joint model against one model per task on the same budget.

Everything is measured through the real code paths, never a copy of them:
  - a training step is the trainer's own `Run._train_step` (forward + backward + clip + optimizer step) on
    the trainer's own batches: one batch of one task, as in the sampled step mode;
  - inference is `inference.forward_batches`, the batched forward pass behind validation, `mtl evaluate`
    and the predict commands (length-sorted batches, head outputs to numpy; decoding excluded);
  - accuracy and the single-task comparison are real `train()` runs, scored by the trainer's validation.

Throughput counts real (non-pad) tokens. Timings are taken after warm-up steps; a figure is the median over
repeats. The engine never prints: it reports through `on_event(kind, data)`. Events: "machine" (the machine
description), "note" {message}, "phase" {label, total}, "advance" {completed}, "model" {the measured row}.
"""

from __future__ import annotations

import gc
import os
import platform
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import tasks as registry
from .config import TrainConfig, validate
from .errors import InputError, TrainingInterrupted

EventHandler = Callable[[str, dict], None]
COMPARE_MODES = ("single-task",)

# warm-up steps, timed repeats, steps per repeat, inference inputs (per task and batch size)
STANDARD_COUNTS = {"warmup": 2, "repeats": 5, "steps": 3, "infer_examples": 64}
QUICK_COUNTS = {"warmup": 1, "repeats": 3, "steps": 2, "infer_examples": 16}
# --quick: short sequences, small batches and a tiny training budget (a smoke test, not a measurement)
QUICK_CONFIG = {"max_length": 32, "qa_max_length": 128, "doc_stride": 32, "ner_train_size": 128, "qa_train_size": 64,
                "cls_train_size": 128, "epochs": 1}
QUICK_MAX_BATCH = 8
# inputs when the config names no data: the bundled demo excerpts (real Wikigold and SQuAD text)
DEMO_DATA = {"ner": ("@demo/wikigold_train.conll", "@demo/wikigold_valid.conll"),
             "qa": ("@demo/squad_train.json", "@demo/squad_valid.json")}
DEFAULT_TOKENIZER = "minilm"  # with --random-init: BERT's uncased WordPiece vocabulary, available offline


@dataclass
class BenchmarkOptions:
    backbones: list[str] = field(default_factory=list)  # empty: the config's backbone
    tasks: list[str] = field(default_factory=list)  # empty: the tasks the config has data for, else ner + qa
    random_init: bool = False  # build each backbone from its config: speed does not depend on the weights
    tokenizer: str = ""  # with random_init: the one tokenizer for every backbone (default: minilm)
    quick: bool = False
    warmup: int | None = None  # None: the default of the mode (standard or quick)
    repeats: int | None = None
    steps: int | None = None
    infer_examples: int | None = None
    accuracy: bool = False  # also a short fixed-budget train + evaluate per backbone
    compare: str = ""  # "single-task": the joint model against one model per task, same budget
    command: str = ""  # the command line, kept with the results


@dataclass
class _Candidate:
    label: str  # what the user named
    backbone: str  # what config.backbone becomes (a prepared directory with --random-init)
    vocab_size: int = 0
    clamp: int | None = None  # with a tokenizer larger than the vocabulary: ids above it become this id


# ---------------------------------------------------------------------------------------------- settings
def resolve_config(base: TrainConfig, options: BenchmarkOptions) -> tuple[TrainConfig, list[str]]:
    """The config every model of the benchmark shares, and notes on where its inputs come from."""
    notes = []
    tasks = list(options.tasks) or base.tasks() or ["ner", "qa"]
    unknown = [t for t in tasks if t not in registry.names()]
    if unknown:
        raise InputError(f"--tasks: unknown task '{unknown[0]}'; tasks are {', '.join(registry.names())}")
    values = {}
    for task in registry.names():
        if task not in tasks:
            values[f"{task}_train"] = values[f"{task}_valid"] = ""
        elif not getattr(base, f"{task}_train"):
            if task not in DEMO_DATA:
                raise InputError(f"no {task} data: give --{task}-train (and --{task}-valid); mtl bundles no {task} data")
            values[f"{task}_train"], values[f"{task}_valid"] = DEMO_DATA[task]
            notes.append(f"{task}: the bundled demo data ({DEMO_DATA[task][0]}, {DEMO_DATA[task][1]})")
    if options.quick:
        values |= QUICK_CONFIG
        values["batch_size"] = min(base.batch_size, QUICK_MAX_BATCH)
        for key in ("ner_train_size", "qa_train_size", "cls_train_size"):
            if getattr(base, key):
                values[key] = min(getattr(base, key), QUICK_CONFIG[key])
        if "qa" in tasks and not base.qa_valid_articles:
            values["qa_valid_articles"] = "0:1"  # QA validation on the first article only
    if options.random_init:
        values["random_init"] = True
    config = base.replace(**values)
    validate(config)
    return config, notes


def counts(options: BenchmarkOptions) -> dict[str, int]:
    defaults = QUICK_COUNTS if options.quick else STANDARD_COUNTS
    chosen = {key: default if getattr(options, key) is None else getattr(options, key) for key, default in defaults.items()}
    for key, least in (("warmup", 0), ("repeats", 1), ("steps", 1), ("infer_examples", 1)):
        if chosen[key] < least:
            raise InputError(f"--{key.replace('_', '-')} must be at least {least}, got {chosen[key]}")
    return chosen


# ---------------------------------------------------------------------------------------------- machine
def machine(device: str = "cpu") -> dict:
    """What every figure is measured on: stored next to each of them."""
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    kind = str(device).split(":")[0]
    gpu = torch.cuda.get_device_name(0) if kind == "cuda" and torch.cuda.is_available() else ""
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "transformers": transformers.__version__, "python": platform.python_version(), "os": platform.platform(),
        "device": gpu or kind, "avx512_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
    }


# ---------------------------------------------------------------------------------------------- memory
class PeakMemory:
    """Peak memory of a phase: max allocated on CUDA; on the CPU the peak RSS of this process (Linux's VmHWM,
    reset at the start of the phase; where it cannot be reset, the process's peak since it started). The RSS
    includes Python, torch and whatever earlier phases left resident: `start_mb` is the RSS the phase began with."""

    def __init__(self, device):
        self.kind = "cuda_max_allocated" if str(device).startswith("cuda") else "rss"
        self.device = device
        self.resettable = True
        self.start_mb = 0.0

    def reset(self) -> None:
        _release_memory()
        if self.kind == "cuda_max_allocated":
            import torch

            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_mb = torch.cuda.memory_allocated(self.device) / 2**20
            return
        try:
            with open("/proc/self/status", encoding="ascii") as handle:
                match = re.search(r"VmRSS:\s+(\d+)\s+kB", handle.read())
            self.start_mb = int(match.group(1)) / 1024 if match else 0.0
        except OSError:
            pass
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
                handle.write("5")  # resets the peak RSS to the current RSS
        except OSError:
            self.resettable = False

    def peak_mb(self) -> float:
        if self.kind == "cuda_max_allocated":
            import torch

            return torch.cuda.max_memory_allocated(self.device) / 2**20
        try:
            with open("/proc/self/status", encoding="ascii") as handle:
                match = re.search(r"VmHWM:\s+(\d+)\s+kB", handle.read())
            if match and self.resettable:
                return int(match.group(1)) / 1024
        except OSError:
            pass
        import resource

        self.resettable = False
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if platform.system() == "Darwin" else peak / 1024


def _release_memory() -> None:
    """Collect garbage and hand freed heap back to the OS, so that the next phase's RSS starts clean."""
    gc.collect()
    if platform.system() == "Linux":
        import ctypes

        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def _busy_note(cores: int | None) -> str:
    """Other work on the machine slows every figure (and threads fighting over cores, a lot)."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return ""
    if cores and load > 0.5 * cores:
        return (f"the machine is busy (load average {load:.1f} on {cores} cores): timings will be slower and noisier "
                f"than on an idle machine; --set threads=N below the free cores helps")
    return ""


def _sync(device) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------------- backbones
def prepare_backbones(config: TrainConfig, options: BenchmarkOptions, workdir: Path) -> tuple[list[_Candidate], list[str]]:
    """With --random-init, each backbone becomes a directory holding its config (the Hub's, else the shipped
    one) and the one shared tokenizer, so every model sees the very same token ids."""
    from .backbones import load_backbone_config, load_tokenizer

    names = options.backbones or [config.backbone]
    if not options.random_init:
        if options.tokenizer:
            raise InputError("--tokenizer is for --random-init: pretrained weights need their own tokenizer")
        notes = ["each backbone tokenizes the inputs with its own tokenizer; tokens/s counts its own tokens"] if len(names) > 1 else []
        return [_Candidate(name, name) for name in names], notes
    tokenizer_name = options.tokenizer or DEFAULT_TOKENIZER
    try:
        tokenizer = load_tokenizer(tokenizer_name)
    except InputError as err:
        raise InputError(f"--random-init tokenizes every backbone's inputs with one tokenizer, '{tokenizer_name}', "
                         f"which is not available ({err}); name another with --tokenizer") from None
    notes = [(f"random weights (--random-init): speed only. Every backbone's inputs are tokenized with the "
              f"'{tokenizer_name}' tokenizer ({type(tokenizer).__name__}, {len(tokenizer):,} tokens), so all see the "
              f"same token ids")]
    candidates = []
    for i, name in enumerate(names):
        backbone_config = load_backbone_config(name)
        directory = workdir / f"backbone-{i}"
        backbone_config.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        vocab = backbone_config.vocab_size
        candidate = _Candidate(name, str(directory), vocab)
        if len(tokenizer) > vocab:
            candidate.clamp = min(tokenizer.unk_token_id or 0, vocab - 1)
            notes.append(f"{name}: vocabulary of {vocab:,} < the tokenizer's {len(tokenizer):,}: larger ids are mapped to id {candidate.clamp}")
        elif vocab != len(tokenizer):
            notes.append(f"{name}: its embedding table keeps its own {vocab:,} rows; the inputs use the tokenizer's ids")
        candidates.append(candidate)
    return candidates, notes


def _clamp_ids(features, vocab: int, replacement: int) -> None:
    for ids in features.input_ids:
        for i, token in enumerate(ids):
            if token >= vocab:
                ids[i] = replacement


# ---------------------------------------------------------------------------------------------- one model
def _build_run(config: TrainConfig, candidate: _Candidate, workdir: Path, on_event: EventHandler, sizes: dict):
    """The trainer's own Run (data, features, model, optimizer, accelerate) for `config` on this backbone."""
    from .training.trainer import Run

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
                    _clamp_ids(features, candidate.vocab_size, candidate.clamp)
    return run


def _parameters(run, tasks: list[str]) -> dict:
    counts_ = run.core.parameter_counts()
    heads = {task: counts_[task] for task in tasks}
    return {"encoder": counts_["encoder"], "heads": sum(heads.values()), "per_head": heads,
            "total": counts_["encoder"] + sum(heads.values())}


def measure_model(config: TrainConfig, candidate: _Candidate, counts_: dict, workdir: Path, on_event: EventHandler,
                  kind: str = "joint") -> dict:
    """Parameters, inference and training throughput per task, and peak memory of one model."""
    tasks = config.tasks()
    name = f"{candidate.label} ({kind})"
    on_event("phase", {"label": f"{name}: building the model", "total": None})
    sizes: dict = {}
    run = _build_run(config, candidate, workdir, on_event, sizes)
    try:
        device = run.accelerator.device
        memory = PeakMemory(device)
        memory.reset()
        inference = {task: _measure_inference(run, task, counts_, name, on_event) for task in tasks}
        inference_peak, inference_start = memory.peak_mb(), memory.start_mb
        memory.reset()
        training = {task: _measure_training(run, task, counts_, name, on_event) for task in tasks}
        training_peak, training_start = memory.peak_mb(), memory.start_mb
        row = {
            "backbone": candidate.label, "model": kind, "tasks": tasks, "parameters": _parameters(run, tasks),
            "train": training, "inference": inference,
            "peak_memory_mb": {"train": training_peak, "inference": inference_peak, "kind": memory.kind,
                               "train_start": training_start, "inference_start": inference_start,
                               "reset_per_phase": memory.resettable},
            "device": str(device), "precision": run.accelerator.mixed_precision, "data": sizes,
        }
    finally:
        del run
        _release_memory()
    on_event("model", row)
    return row


class TrainingProbe:
    """Runs and times the trainer's own step (`Run._train_step`) on batches of one task, counting the real
    tokens, the examples and the encoder's forward passes of every step."""

    def __init__(self, run, task: str):
        self.run, self.task = run, task
        self.rows_per_batch: list[int] = []
        self.passes = 0
        self.repeats: list[dict] = []
        stream = run.streams[task]
        take = stream.next_rows

        def recording_next_rows():
            rows = take()
            self.rows_per_batch.append(len(rows))
            return rows

        stream.next_rows = recording_next_rows
        self.hook = run.core.encoder.register_forward_hook(self._count_pass)

    def _count_pass(self, *args) -> None:
        self.passes += 1

    def step(self) -> None:
        self.run._train_step((self.task,), last=False)
        self.run.step += 1

    def timed(self, steps: int, after_step: Callable[[], None] = lambda: None) -> None:
        device = self.run.accelerator.device
        _sync(device)
        tokens, batches, passes = self.run.epoch_totals["tokens"][self.task], len(self.rows_per_batch), self.passes
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
            after_step()
        _sync(device)
        seconds = time.perf_counter() - start
        self.repeats.append({"seconds": seconds, "tokens": self.run.epoch_totals["tokens"][self.task] - tokens,
                             "examples": sum(self.rows_per_batch[batches:]), "batches": len(self.rows_per_batch) - batches,
                             "encoder_passes": self.passes - passes})

    def close(self) -> None:
        self.hook.remove()
        del self.run.streams[self.task].next_rows  # the class's own method again

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


def _phase(on_event: EventHandler, label: str, total: int) -> Callable[..., None]:
    """Announce a progress phase of `total` units; the returned function reports n more done."""
    on_event("phase", {"label": label, "total": total})
    done = 0

    def advance(n: int = 1) -> None:
        nonlocal done
        done += n
        on_event("advance", {"completed": done})

    return advance


def _measure_training(run, task: str, counts_: dict, name: str, on_event: EventHandler) -> dict:
    """Training steps of one task's batches: warm-up, then `repeats` × `steps` timed steps; medians."""
    probe = TrainingProbe(run, task)
    advance = _phase(on_event, f"{name}: training {task.upper()}", counts_["warmup"] + counts_["repeats"] * counts_["steps"])
    try:
        for _ in range(counts_["warmup"]):
            probe.step()
            advance()
        for _ in range(counts_["repeats"]):
            probe.timed(counts_["steps"], advance)
    finally:
        probe.close()
    return probe.summary()


def _measure_inference(run, task: str, counts_: dict, name: str, on_event: EventHandler) -> dict:
    """Per batch size (1 and the config's): examples/s, tokens/s and p50/p95 latency per batch."""
    import numpy as np

    from .inference.forward import forward_batches

    td = run.data[task]
    features = td.valid_features if td.valid_features is not None and len(td.valid_features) else td.train_features
    inputs = features.first(counts_["infer_examples"])
    model, device, autocast = run.core, run.accelerator.device, run.accelerator.autocast
    sizes = sorted({1, run.config.batch_size})
    advance = _phase(on_event, f"{name}: inference {task.upper()}", len(sizes) * len(inputs))
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


# ---------------------------------------------------------------------------------------------- training runs
def train_and_evaluate(config: TrainConfig, candidate: _Candidate, workdir: Path, on_event: EventHandler,
                       kind: str = "joint") -> dict:
    """A real `train()` run on the config's budget; its last validation gives the metrics."""
    from .training.trainer import train

    if candidate.clamp is not None:
        raise InputError(f"{candidate.label}: --accuracy and --compare train on the tokenizer's ids, which do not fit "
                         f"its vocabulary of {candidate.vocab_size:,}: choose a --tokenizer that fits")
    out = Path(tempfile.mkdtemp(prefix="train-", dir=workdir))
    config = config.replace(backbone=candidate.backbone, output_dir=str(out), save_every=0, keep_checkpoints=1)
    name = f"{candidate.label} ({kind})"
    info: dict = {"data": {}}
    on_event("phase", {"label": f"{name}: preparing a {config.epochs}-epoch training run", "total": None})

    def forward(event: str, data: dict) -> None:
        if event == "data":
            info["data"] = {task: {"train": row["train"], "train_features": row["train_features"], "valid": row["valid"]}
                            for task, row in data.items()}
        elif event == "start":
            info["parameters"] = data["parameters"]
            info["steps"] = data["steps_per_epoch"] * data["epochs"]
            on_event("phase", {"label": f"{name}: training {config.epochs} epoch(s) + validation", "total": info["steps"]})
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
    parameters = info.get("parameters", {})
    shutil.rmtree(out, ignore_errors=True)  # checkpoints of every size: the disk is not the benchmark's
    return {
        "backbone": candidate.label, "model": kind, "tasks": config.tasks(),
        "parameters": sum(parameters.values()), "epochs": len(history), "steps": info.get("steps", 0),
        "train_examples": {task: row["train"] for task, row in info["data"].items()},
        "valid_examples": {task: row["valid"] for task, row in info["data"].items()},
        "train_time_s": sum(h["epoch_time_s"] for h in history),
        "eval_time_s": last.get("eval_time_s", 0.0),
        "metrics": last.get("valid", {}),
    }


def _only(config: TrainConfig, task: str) -> TrainConfig:
    return config.replace(**{f"{t}_{split}": "" for t in registry.names() if t != task for split in ("train", "valid")})


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def paired_training_speed(config: TrainConfig, candidate: _Candidate, counts_: dict, workdir: Path,
                          on_event: EventHandler) -> dict:
    """Training throughput of the joint model and of the single-task model on the very same batches of each
    task, timed in alternating repeats (joint first, then single first, ...), so that a drifting machine load
    weighs on both alike. The ratio is what says whether the joint step costs one encoder pass per batch."""
    tasks = config.tasks()
    name = f"{candidate.label} (joint vs single-task)"
    on_event("phase", {"label": f"{name}: building the models", "total": None})
    joint = _build_run(config, candidate, workdir, on_event, {})
    results = {}
    try:
        for task in tasks:
            single = _build_run(_only(config, task), candidate, workdir, on_event, {})
            probes = {"joint": TrainingProbe(joint, task), "single": TrainingProbe(single, task)}
            advance = _phase(on_event, f"{name}: training {task.upper()}, alternating",
                             2 * (counts_["warmup"] + counts_["repeats"] * counts_["steps"]))
            try:
                for probe in probes.values():
                    for _ in range(counts_["warmup"]):
                        probe.step()
                        advance()
                for r in range(counts_["repeats"]):
                    for key in (("joint", "single") if r % 2 == 0 else ("single", "joint")):
                        probes[key].timed(counts_["steps"], advance)
            finally:
                for probe in probes.values():
                    probe.close()
            summaries = {key: probe.summary() for key, probe in probes.items()}
            summaries["single"]["parameters"] = _parameters(single, [task])["total"]
            summaries["joint"]["parameters"] = _parameters(joint, tasks)["total"]
            results[task] = summaries | {"ratio": _ratio(summaries["joint"]["tokens_per_s"], summaries["single"]["tokens_per_s"])}
            del single, probes
            _release_memory()
        _warm_up_validation(joint, name, on_event)
    finally:
        del joint
        _release_memory()
    return results


def _warm_up_validation(run, name: str, on_event: EventHandler) -> None:
    """One untimed pass over the validation sets: the first timed run (the joint model's) would otherwise pay
    alone for one-off costs (kernels built for each new batch shape) that the later runs find ready."""
    tasks = [task for task, td in run.data.items() if td.valid]
    on_event("phase", {"label": f"{name}: warming up (one untimed validation pass)", "total": len(tasks)})
    for i, task in enumerate(tasks, 1):
        td = run.data[task]
        registry.get(task).evaluate(run.core, td.valid, td.valid_features, run.config.eval_batch_size,
                                    run.accelerator.device, run.accelerator.autocast, {})
        on_event("advance", {"completed": i})


def compare_single_task(config: TrainConfig, candidate: _Candidate, counts_: dict, workdir: Path,
                        on_event: EventHandler) -> tuple[dict, dict]:
    """The joint model against one model per task: the same data, epochs, batch size and seed for both.
    Returns the comparison and the joint model's training run."""
    tasks = config.tasks()
    speed = paired_training_speed(config, candidate, counts_, workdir, on_event)
    joint_run = train_and_evaluate(config, candidate, workdir, on_event)
    runs = {task: train_and_evaluate(_only(config, task), candidate, workdir, on_event, kind=f"single-{task}") for task in tasks}

    def row(model: str, side: str, model_runs: list[dict], row_tasks: list[str]) -> dict:
        return {
            "model": model, "tasks": row_tasks,
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
        "budget": {"epochs": config.epochs, "batch_size": config.batch_size, "step_mode": config.step_mode,
                   "sampling": config.sampling, "seed": config.seed, "train_examples": joint_run["train_examples"],
                   "valid_examples": joint_run["valid_examples"]},
        "rows": [joint_row, *[row(f"single-{t}", "single", [runs[t]], [t]) for t in tasks], total],
        "ratios": {  # joint ÷ the single-task models together
            "parameters": _ratio(joint_row["parameters"], total["parameters"]),
            "train_time": _ratio(joint_row["train_time_s"], total["train_time_s"]),
            "inference_time": _ratio(joint_row["eval_time_s"], total["eval_time_s"]),
            "train_tokens_per_s": {t: speed[t]["ratio"] for t in tasks},
        },
        "paired_training_speed": speed,
    }, joint_run


# ---------------------------------------------------------------------------------------------- the benchmark
def run_benchmark(base: TrainConfig, options: BenchmarkOptions, on_event: EventHandler = lambda kind, data: None) -> dict:
    if options.compare and options.compare not in COMPARE_MODES:
        raise InputError(f"--compare must be one of {', '.join(COMPARE_MODES)}, got '{options.compare}'")
    config, notes = resolve_config(base, options)
    if options.compare and len(config.tasks()) < 2:
        raise InputError("--compare single-task needs at least two tasks (e.g. --tasks ner,qa)")
    counts_ = counts(options)
    result = {"command": options.command, "machine": {}, "settings": {}, "notes": [], "models": [], "accuracy": [], "compare": []}
    with tempfile.TemporaryDirectory(prefix="mtl-benchmark-") as tmp:
        workdir = Path(tmp)
        candidates, backbone_notes = prepare_backbones(config, options, workdir)
        notes += backbone_notes
        if options.random_init and (options.accuracy or options.compare):
            notes.append("--accuracy/--compare with --random-init train encoders from random weights: their metrics "
                         "say nothing about the pretrained backbones")
        notes.append("training: one batch of one task per step (forward + backward + clip + AdamW step), real "
                     "(non-pad) tokens; inference: batched forward to head outputs (decoding excluded), latency per "
                     "batch; QA inputs are question windows")
        from .devices import resolve_device

        result["machine"] = machine(resolve_device(config.device))
        if config.threads:
            result["machine"]["torch_threads"] = config.threads
        on_event("machine", result["machine"])
        busy = _busy_note(result["machine"]["cores"])
        if busy:
            notes.append(busy)
        for note in notes:
            on_event("note", {"message": note})
        for candidate in candidates:
            result["models"].append(measure_model(config, candidate, counts_, workdir, on_event))
        for candidate in candidates:
            if options.compare:
                comparison, joint_run = compare_single_task(config, candidate, counts_, workdir, on_event)
                result["compare"].append(comparison)
                result["accuracy"].append(joint_run)
            elif options.accuracy:
                result["accuracy"].append(train_and_evaluate(config, candidate, workdir, on_event))
    first = result["models"][0]
    result["settings"] = {
        "tasks": config.tasks(), "quick": options.quick, "random_init": options.random_init,
        "tokenizer": (options.tokenizer or DEFAULT_TOKENIZER) if options.random_init else "each backbone's own",
        "device": first["device"], "precision": first["precision"], "batch_size": config.batch_size,
        "max_length": config.max_length, "qa_max_length": config.qa_max_length, "doc_stride": config.doc_stride,
        "epochs": config.epochs, "lr": config.lr, "seed": config.seed, "threads": config.threads,
        "data": {task: {"train": getattr(config, f"{task}_train"), "valid": getattr(config, f"{task}_valid"),
                        "train_size": getattr(config, f"{task}_train_size")} for task in config.tasks()},
        **counts_,
    }
    result["notes"] = notes
    return result


# ---------------------------------------------------------------------------------------------- flat rows
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
        row = {"section": "speed", "backbone": model["backbone"], "model": model["model"], "tasks": "+".join(model["tasks"]),
               "params_encoder": p["encoder"], "params_heads": p["heads"], "params_total": p["total"]}
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
            row = {"section": "compare", "backbone": entry["backbone"], "model": compared["model"],
                   "tasks": "+".join(compared["tasks"]), "params_total": compared["parameters"]}
            for task in compared["tasks"]:
                row[f"train_{task}_tokens_per_s"] = compared["train_tokens_per_s"][task]
                row[f"train_{task}_examples_per_s"] = compared["train_examples_per_s"][task]
            row["train_time_s"], row["eval_time_s"] = compared["train_time_s"], compared["eval_time_s"]
            add_metrics(row, compared["metrics"])
            rows.append(row | {"precision": precision})
    rows = [row | machine_ for row in rows]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return [{key: row.get(key) for key in columns} for row in rows]
