"""The benchmark as a whole: every backbone's model measured (parameters, training and inference speed, peak
memory), then the training runs of --accuracy and --compare, and the settings they all shared."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..config import TrainConfig
from ..errors import InputError
from .compare import compare_single_task, train_and_evaluate
from .machine import PeakMemory, busy_note, machine, release_memory
from .probes import build_run, inference_model, measure_inference, measure_training, parameters
from .settings import (
    COMPARE_MODES,
    DEFAULT_TOKENIZER,
    BenchmarkOptions,
    Candidate,
    EventHandler,
    counts,
    prepare_backbones,
    resolve_config,
)


def measure_model(
    config: TrainConfig, candidate: Candidate, counts_: dict, workdir: Path, on_event: EventHandler, kind: str = "joint"
) -> dict:
    """Parameters, inference and training throughput per task, and peak memory of one model."""
    tasks = config.tasks()
    name = f"{candidate.label} ({kind})"
    on_event("phase", {"label": f"{name}: building the model", "total": None})
    sizes: dict = {}
    run = build_run(config, candidate, workdir, on_event, sizes)
    try:
        device = run.accelerator.device
        memory = PeakMemory(device)
        memory.reset()
        model = inference_model(run, candidate)  # the run's weights, prepared as the predict commands do
        inference = {task: measure_inference(run, task, counts_, name, on_event, model) for task in tasks}
        inference_peak, inference_start = memory.peak_mb(), memory.start_mb
        del model
        memory.reset()
        training = {task: measure_training(run, task, counts_, name, on_event) for task in tasks}
        training_peak, training_start = memory.peak_mb(), memory.start_mb
        row = {
            "backbone": candidate.label,
            "model": kind,
            "tasks": tasks,
            "parameters": parameters(run, tasks),
            "train": training,
            "inference": inference,
            "peak_memory_mb": {
                "train": training_peak,
                "inference": inference_peak,
                "kind": memory.kind,
                "train_start": training_start,
                "inference_start": inference_start,
                "reset_per_phase": memory.resettable,
            },
            "device": str(device),
            "precision": run.precision,
            "data": sizes,
        }
    finally:
        del run
        release_memory()
    on_event("model", row)
    return row


def run_benchmark(
    base: TrainConfig, options: BenchmarkOptions, on_event: EventHandler = lambda kind, data: None
) -> dict:
    if options.compare and options.compare not in COMPARE_MODES:
        raise InputError(f"--compare must be one of {', '.join(COMPARE_MODES)}, got '{options.compare}'")
    config, notes = resolve_config(base, options)
    if options.compare and len(config.tasks()) < 2:
        raise InputError("--compare single-task needs at least two tasks (e.g. --tasks ner,qa)")
    counts_ = counts(options)
    result = {
        "command": options.command,
        "machine": {},
        "settings": {},
        "notes": [],
        "models": [],
        "accuracy": [],
        "compare": [],
    }
    with tempfile.TemporaryDirectory(prefix="mtl-benchmark-") as tmp:
        workdir = Path(tmp)
        candidates, backbone_notes = prepare_backbones(config, options, workdir)
        notes += backbone_notes
        if options.random_init and (options.accuracy or options.compare):
            notes.append(
                "--accuracy/--compare with --random-init train encoders from random weights: their metrics "
                "say nothing about the pretrained backbones"
            )
        notes.append(
            "training: one batch of one task per step (forward + backward + clip + AdamW step), real "
            "(non-pad) tokens; inference: the predict path (the model prepared for inference as `mtl "
            "predict-*` prepares it; the task's predict: tokenization + forward + decoding) on raw validation "
            "inputs, latency per request of batch-size inputs; a QA input is a question with its context "
            "(every window of it runs)"
        )
        from ..devices import resolve_device

        result["machine"] = machine(resolve_device(config.device))
        if config.threads:
            result["machine"]["torch_threads"] = config.threads
        on_event("machine", result["machine"])
        busy = busy_note(result["machine"]["cores"])
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
        "tasks": config.tasks(),
        "quick": options.quick,
        "random_init": options.random_init,
        "tokenizer": (options.tokenizer or DEFAULT_TOKENIZER) if options.random_init else "each backbone's own",
        "device": first["device"],
        "precision": first["precision"],
        "batch_size": config.batch_size,
        "max_length": config.max_length,
        "qa_max_length": config.qa_max_length,
        "doc_stride": config.doc_stride,
        "epochs": config.epochs,
        "lr": config.lr,
        "seed": config.seed,
        "threads": config.threads,
        "data": {
            task: {
                "train": getattr(config, f"{task}_train"),
                "valid": getattr(config, f"{task}_valid"),
                "train_size": getattr(config, f"{task}_train_size"),
            }
            for task in config.tasks()
        },
        **counts_,
    }
    result["notes"] = notes
    return result
