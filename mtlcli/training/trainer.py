"""The joint training loop: one shared encoder, each task with its own batches, standard optimisation.

The engine never prints: it reports through `on_event(kind, data)`, and the CLI renders.
Events: "data" (examples/features per task), "start", "step", "eval", "saved", "stopped", "end".
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..backbones import load_backbone_config, load_tokenizer
from ..config import TrainConfig, to_toml
from ..errors import InputError, Problem
from ..evaluation import PRIMARY_METRIC, evaluate_task
from ..model import ModelSpec, build_model, save_model
from ..tasks import featurize, read_task_data
from .batching import collate, training_batches
from .logs import MetricsLog
from .sampling import epoch_schedule

EventHandler = Callable[[str, dict], None]
LOG_EVERY = 10  # steps between step records in metrics.jsonl


@dataclass
class TrainResult:
    output_dir: Path
    history: list[dict] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False


class TaskStream:
    """Endless batches of one task: every pass over its data is a fresh shuffle from (seed, task, pass)."""

    def __init__(self, task: str, features, config: TrainConfig, rank: int = 0, world: int = 1):
        self.task, self.features, self.config = task, features, config
        self.rank, self.world = rank, world
        self.passes, self.queue = 0, []

    def batches_per_pass(self) -> int:
        return math.ceil(len(self.features) / self.config.batch_size) // self.world

    def next_rows(self) -> list[int]:
        if not self.queue:
            rng = random.Random(f"{self.config.seed}/{self.task}/{self.passes}")
            batches = training_batches(self.features.lengths(), self.config.batch_size, rng, self.config.group_by_length)
            usable = len(batches) // self.world * self.world  # every rank takes as many steps
            self.queue = batches[self.rank : usable : self.world]
            self.passes += 1
        return self.queue.pop(0)


def choose_precision(config: TrainConfig, device_type: str) -> str:
    """accelerate's mixed_precision: fp16 AMP on CUDA (bf16 where supported), bf16 autocast on AVX512-BF16 CPUs."""
    if config.precision != "auto":
        return {"fp32": "no"}.get(config.precision, config.precision)
    if device_type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device_type == "cpu" and torch.cpu._is_avx512_bf16_supported():
        return "bf16"
    return "no"


def _device_type(config: TrainConfig) -> str:
    if config.device != "auto":
        return config.device
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _optimizer(model, config: TrainConfig):
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim < 2 else decay).append(param)  # biases and LayerNorm weights
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )


def _linear_schedule(optimizer, warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def prepare_output_dir(path: Path, overwrite: bool) -> None:
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise InputError(Problem(str(path), "", "output directory is not empty; pass --overwrite or choose another --output-dir"))
    path.mkdir(parents=True, exist_ok=True)


def train(config: TrainConfig, on_event: EventHandler = lambda kind, data: None, overwrite: bool = False) -> TrainResult:
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    output_dir = Path(config.output_dir)
    if not config.tasks():
        raise InputError("no training data: give at least one of ner_train, qa_train, cls_train")
    data = read_task_data(config)  # every file validated before anything slow happens
    device_type = _device_type(config)
    # heads a sampled step leaves unused must not break DDP's gradient reduction
    accelerator = Accelerator(
        mixed_precision=choose_precision(config, device_type),
        cpu=device_type == "cpu",
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    is_main = accelerator.is_main_process
    if is_main:
        prepare_output_dir(output_dir, overwrite)
    if config.threads:
        torch.set_num_threads(config.threads)
    random.seed(config.seed)
    torch.manual_seed(config.seed)

    tokenizer = load_tokenizer(config.backbone)
    labels = featurize(data, tokenizer, config)
    spec = ModelSpec(
        backbone=config.backbone,
        backbone_config=load_backbone_config(config.backbone).to_dict(),
        tasks=list(data),
        ner_labels=labels["ner"],
        cls_labels=labels["cls"],
        max_length=config.max_length, qa_max_length=config.qa_max_length, doc_stride=config.doc_stride,
        max_answer_length=config.max_answer_length, head_dropout=config.head_dropout,
    )
    on_event("data", {task: {"train": len(td.train), "train_features": len(td.train_features),
                             "valid": len(td.valid), "skipped": len(td.skipped)} for task, td in data.items()})

    model = build_model(spec, random_init=config.random_init)
    optimizer = _optimizer(model, config)
    streams = {task: TaskStream(task, td.train_features, config, accelerator.process_index, accelerator.num_processes)
               for task, td in data.items()}
    batches = {task: stream.batches_per_pass() for task, stream in streams.items()}
    steps_per_epoch = len(epoch_schedule(batches, config.step_mode, config.sampling, 0, config.epochs, random.Random(0)))
    updates_per_epoch = math.ceil(steps_per_epoch / config.grad_accum)
    total_updates = updates_per_epoch * config.epochs
    scheduler = _linear_schedule(optimizer, int(config.warmup_ratio * total_updates), total_updates)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    core = accelerator.unwrap_model(model)
    pad_id = core.encoder.config.pad_token_id or 0
    weights = {"ner": config.lambda_ner, "qa": config.lambda_qa, "cls": config.lambda_cls}

    log = MetricsLog(output_dir) if is_main else None
    if is_main:
        (output_dir / "train_config.toml").write_text(to_toml(config), encoding="utf-8")
    on_event("start", {"tasks": list(data), "epochs": config.epochs, "steps_per_epoch": steps_per_epoch,
                       "device": str(accelerator.device), "precision": accelerator.mixed_precision,
                       "parameters": core.parameter_counts(), "processes": accelerator.num_processes})

    result = TrainResult(output_dir)
    best: dict[str, float] = {}
    epochs_without_gain = 0
    started = time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        schedule = epoch_schedule(batches, config.step_mode, config.sampling, epoch, config.epochs,
                                  random.Random(f"{config.seed}/schedule/{epoch}"))
        loss_sums, loss_counts, tokens = defaultdict(float), defaultdict(int), defaultdict(int)
        epoch_start = time.perf_counter()
        for step, step_tasks in enumerate(schedule):
            total_loss = 0.0
            for task in step_tasks:
                batch = collate(streams[task].features, streams[task].next_rows(), task, pad_id)
                batch = {k: v.to(accelerator.device) for k, v in batch.items()}
                with accelerator.autocast():
                    loss = model(task, **batch)["loss"]
                total_loss = total_loss + weights[task] * loss
                loss_sums[task] += loss.item()
                loss_counts[task] += 1
                tokens[task] += int(batch["attention_mask"].sum())
            accelerator.backward(total_loss / config.grad_accum)
            if (step + 1) % config.grad_accum == 0 or step + 1 == len(schedule):
                if config.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            elapsed = time.perf_counter() - epoch_start
            progress = {
                "epoch": epoch + 1, "step": step + 1, "steps": len(schedule),
                "loss": {t: loss_sums[t] / loss_counts[t] for t in loss_counts},
                "lr": scheduler.get_last_lr()[0],
                "tokens": dict(tokens),  # real (non-pad) tokens per task this epoch
                "tokens_per_s": sum(tokens.values()) / elapsed,
                "elapsed": time.perf_counter() - started,
            }
            on_event("step", progress)
            if log and (step + 1) % LOG_EVERY == 0:
                log.step(progress)

        record = {"epoch": epoch + 1, "train_loss": {t: loss_sums[t] / loss_counts[t] for t in loss_counts},
                  "epoch_time_s": time.perf_counter() - epoch_start}
        improved = []
        if is_main:
            valid = {}
            for task, td in data.items():
                if td.valid:
                    evaluation = evaluate_task(core, task, td.valid, td.valid_features, config.eval_batch_size,
                                               accelerator.device, accelerator.autocast)
                    valid[task] = evaluation.metrics
                    score = evaluation.metrics[PRIMARY_METRIC[task]]
                    if score > best.get(task, -math.inf):
                        best[task] = score
                        improved.append(task)
            record |= {"valid": valid, "eval_time_s": time.perf_counter() - epoch_start - record["epoch_time_s"],
                       "wall_time_s": time.perf_counter() - started}
            save_model(core, tokenizer, output_dir / "last")
            for task in improved:
                save_model(core, tokenizer, output_dir / f"best-{task}")
            log.epoch(record)
            result.history.append(record)
            on_event("eval", record | {"improved": improved, "best": dict(best)})
        accelerator.wait_for_everyone()
        epochs_without_gain = 0 if improved or not best else epochs_without_gain + 1
        if config.patience and epochs_without_gain >= config.patience:
            result.stopped_early = True
            on_event("stopped", {"epoch": epoch + 1, "patience": config.patience})
            break
    result.best = best
    on_event("end", {"output_dir": str(output_dir), "best": best, "wall_time_s": time.perf_counter() - started})
    return result
