"""The joint training loop: one shared encoder, each task with its own batches, standard optimisation.

The engine never prints: it reports through `on_event(kind, data)`, and the CLI renders.
Events: "data", "start", "resumed", "step", "eval", "checkpoint", "stopped", "end".

Everything random in a run is derived from the seed: a task's batches from (seed, task, pass over its
data), the task order of an epoch from (seed, epoch), dropout from torch's RNG (saved in checkpoints).
So a resumed run replays exactly the steps an uninterrupted run would have taken.
"""

from __future__ import annotations

import math
import random
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import tasks
from ..backbones import load_backbone_config, load_tokenizer
from ..config import TrainConfig, to_toml
from ..devices import autocast_for, resolve_device, resolve_precision
from ..errors import InputError, TrainingInterrupted
from ..memory import keep_freed_heap, memory_record, rss_mb, trim_heap
from ..model import build_model, save_model
from ..spec import new_spec, uses_segments
from ..task_data import featurize, read_task_data
from .batching import collate
from .checkpoint import latest_valid_checkpoint
from .distill import Teachers, attach_teachers
from .logs import MetricsLog, tracker_options, trackers
from .optim import freeze_layers, linear_schedule, make_optimizer, optimizer_step
from .packing import packs
from .ranks import same_on_every_rank, weights_checksums
from .run_state import restore_run_state, save_run_state
from .rundir import CONFIG_FILE, portable_config, prepare_output_dir, resume_config  # noqa: F401 (resume_config: API)
from .sampling import epoch_schedule
from .streams import TaskStream
from .weighting import apply_pcgrad, gradient_cosines, last_shared_weight, make_weighting, task_gradients

EventHandler = Callable[[str, dict], None]
TRIM_EVERY = 50  # steps between handing the heap's free pages back to the OS


@dataclass
class TrainResult:
    output_dir: Path
    history: list[dict] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    weights_checksum: list[int] = field(default_factory=list)  # one per process: equal when DDP stayed in sync
    is_main: bool = True  # False in the other processes of a multi-process run


def train(
    config: TrainConfig, on_event: EventHandler = lambda kind, data: None, overwrite: bool = False, resume: bool = False
) -> TrainResult:
    """Train; with `resume`, continue `config.output_dir` from its newest valid checkpoint."""
    return Run(config, on_event, overwrite, resume).fit()


class Run:
    def __init__(self, config: TrainConfig, on_event: EventHandler, overwrite: bool, resume: bool):
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        # absolute local paths, as train_config.toml records them: `--resume` works from any directory
        config = portable_config(config)
        self.config, self.on_event = config, on_event
        self.output_dir = Path(config.output_dir)
        if not config.tasks():
            raise InputError("no training data: give at least one of ner_train, qa_train, cls_train")
        tracking = tracker_options(trackers(config.report_to), self.output_dir)  # a missing extra fails here
        checkpoint, torn = latest_valid_checkpoint(self.output_dir) if resume else (None, [])
        self.data = read_task_data(config)  # every file validated before anything slow happens
        device = resolve_device(config.device)
        self.precision = resolve_precision(config.precision, device)
        # accelerate fixes one precision per process (only private API resets it), and a second run in the
        # same process (a notebook, the tests) may ask for another: so accelerate stays at fp32 and the Run
        # autocasts itself and, for fp16, scales the loss with its own GradScaler.
        # Heads a sampled step leaves unused must not break DDP's gradient reduction.
        self.accelerator = Accelerator(
            mixed_precision="no",
            cpu=device == "cpu",
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
            **tracking,
        )
        self.is_main = self.accelerator.is_main_process
        if not self.is_main:  # one process speaks for all
            self.on_event = on_event = lambda kind, data: None
        if ":" in device:  # cuda:N; accelerate trains on the current GPU, or in DDP on one GPU per process
            if self.accelerator.num_processes == 1:
                torch.cuda.set_device(device)
            else:
                on_event("warning", {"message": f"device {device} ignored: each process of the run uses its own GPU"})
        for problem in torn:
            on_event("warning", {"message": f"{problem}; using the previous checkpoint {checkpoint.name}"})
        if self.is_main and not resume:
            prepare_output_dir(self.output_dir, overwrite)
        if config.threads:
            torch.set_num_threads(config.threads)
        keep_freed_heap()  # steps reuse the freed buffers of the step before, without page faults
        random.seed(config.seed)
        torch.manual_seed(config.seed)

        self.tokenizer = load_tokenizer(config.backbone)
        backbone_config = load_backbone_config(config.backbone).to_dict()
        labels = featurize(self.data, self.tokenizer, config, uses_segments(config, backbone_config))
        spec = new_spec(config, backbone_config, labels, {task: td.train for task, td in self.data.items()})
        on_event(
            "data",
            {
                task: {
                    "train": len(td.train),
                    "train_features": len(td.train_features),
                    "valid": len(td.valid),
                    "skipped": sum(map(len, td.skipped.values())),
                }
                for task, td in self.data.items()
            },
        )
        model = build_model(
            spec,
            random_init=config.random_init,
            encoder_dropout=None if config.encoder_dropout < 0 else config.encoder_dropout,
        )
        freeze_layers(model, config.freeze_layers)
        optimizer = make_optimizer(model, config.lr, config.weight_decay, config.layer_lr_decay, config.head_lr_mult)
        acc = self.accelerator
        self.autocast = autocast_for(acc.device.type, self.precision)
        self.scaler = torch.amp.GradScaler(acc.device.type) if self.precision == "fp16" else None
        with acc.main_process_first():  # the main process fills the teachers' cache, the others read it
            taught = attach_teachers(self.data, self.tokenizer, config, spec, acc.device, self.precision, on_event)
        self.streams = {
            task: TaskStream(
                task, td.train_features, config, acc.process_index, acc.num_processes, packs(model.encoder)
            )
            for task, td in self.data.items()
        }
        self.batches = {task: stream.batches_per_pass() for task, stream in self.streams.items()}
        self.steps_per_epoch = len(self._schedule(0))
        self.teachers = Teachers(taught, self.steps_per_epoch * config.epochs)
        total_updates = math.ceil(self.steps_per_epoch / config.grad_accum) * config.epochs
        # not prepared by accelerate: it would step the schedule once per process
        self.scheduler = linear_schedule(optimizer, int(config.warmup_ratio * total_updates), total_updates)
        self.model, self.optimizer = acc.prepare(model, optimizer)
        self.core = acc.unwrap_model(self.model)
        self.pad_id = self.core.encoder.config.pad_token_id or 0
        lambdas = {task: config.setting(task, "lambda") for task in self.data}
        self.weighting = make_weighting(
            config.weighting,
            list(self.data),
            lambdas,
            config.weighting_lr,
            config.gradnorm_alpha,
            config.dwa_temperature,
            config.dwa_period,
        ).to(acc.device)
        if config.weighting == "dwa" and not config.dwa_period and config.epochs <= 2:
            # DWA's first weights come from the loss ratio of epochs 1 and 2, so they could steer epoch 3 at the earliest
            on_event(
                "warning",
                {
                    "message": f"weighting=dwa compares the losses of the last two epochs: in a run of "
                    f"{config.epochs} epoch(s) every task weight stays 1; set dwa_period=N to "
                    f"compare windows of N steps instead"
                },
            )
        if acc.num_processes > 1 and (config.weighting == "gradnorm" or config.pcgrad):
            raise InputError("gradnorm and pcgrad edit gradients after DDP has reduced them: run them in one process")
        self.shared_layer = last_shared_weight(self.core.encoder)
        self.pcgrad_rng = torch.Generator().manual_seed(config.seed)
        self.log = MetricsLog(self.output_dir) if self.is_main else None

        # the loop position; a checkpoint replaces it
        self.epoch, self.step, self.global_step = 0, 0, 0
        self.best: dict[str, float] = {}
        self.epochs_without_gain = 0
        self.history: list[dict] = []
        self.epoch_totals = self._fresh_totals()
        self.elapsed_before = 0.0
        if checkpoint:
            restore_run_state(self, checkpoint)
        elif self.is_main:
            (self.output_dir / CONFIG_FILE).write_text(to_toml(config), encoding="utf-8")
        if self.log:
            self.log.start_trackers(acc, config.to_dict(), first_step=self.global_step + 1)
        on_event(
            "start",
            {
                "tasks": list(self.data),
                "epochs": config.epochs,
                "steps_per_epoch": self.steps_per_epoch,
                "device": str(acc.device),
                "precision": self.precision,
                "parameters": self.core.parameter_counts(),
                "processes": acc.num_processes,
            },
        )

    @staticmethod
    def _fresh_totals() -> dict:
        return {"loss_sums": defaultdict(float), "loss_counts": defaultdict(int), "tokens": defaultdict(int)}

    def _schedule(self, epoch: int) -> list[tuple[str, ...]]:
        config = self.config
        return epoch_schedule(
            self.batches,
            config.step_mode,
            config.sampling,
            epoch,
            config.epochs,
            random.Random(f"{config.seed}/schedule/{epoch}"),
        )

    # ------------------------------------------------------------------ the loop
    def fit(self) -> TrainResult:
        interrupted: list[bool] = []
        main_thread = threading.current_thread() is threading.main_thread()  # signals only reach the main thread
        previous = signal.getsignal(signal.SIGINT)

        def on_sigint(signum, frame):  # first Ctrl-C: finish the step, save, stop; a second one aborts at once
            interrupted.append(True)
            signal.signal(signal.SIGINT, previous)

        if main_thread:
            signal.signal(signal.SIGINT, on_sigint)
        try:
            return self._loop(interrupted)
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous)
            if self.log:
                self.log.finish()

    def _loop(self, interrupted: list) -> TrainResult:
        config = self.config
        result = TrainResult(self.output_dir, is_main=self.is_main)
        started = time.perf_counter() - self.elapsed_before
        while self.epoch < config.epochs:
            self.model.train()
            schedule = self._schedule(self.epoch)
            epoch_start = time.perf_counter()
            totals = self.epoch_totals
            while self.step < len(schedule):
                stats = self.train_step(schedule[self.step], last=self.step + 1 == len(schedule))
                elapsed = time.perf_counter() - epoch_start
                progress = {
                    "epoch": self.epoch + 1,
                    "step": self.step,
                    "steps": len(schedule),
                    "loss": {t: totals["loss_sums"][t] / totals["loss_counts"][t] for t in totals["loss_counts"]},
                    "step_loss": {t: s["loss"] for t, s in stats.items()},  # this step's batch (the above: epoch mean)
                    "lr": self.scheduler.get_last_lr()[-1],
                    "weights": self.weighting.weights(),
                    **self.teachers.record(self.global_step - 1),  # the teachers' share in the step just taken
                    "tokens": dict(totals["tokens"]),  # real (non-pad) tokens per task this epoch
                    "tokens_per_s": sum(totals["tokens"].values()) / max(elapsed, 1e-9),
                    "elapsed": time.perf_counter() - started,
                    "rss_mb": rss_mb(),
                }
                if self.global_step % TRIM_EVERY == 0:
                    trim_heap()  # the RSS stays at the working set; the step after pays a few page faults
                self.on_event("step", progress)
                if self.log:
                    self.log.step(progress, self.global_step)
                if same_on_every_rank(self.accelerator, bool(interrupted)):
                    self.elapsed_before = time.perf_counter() - started
                    path = save_run_state(self)
                    raise TrainingInterrupted(self.output_dir, path)
                if config.save_every and self.global_step % config.save_every == 0 and self.step < len(schedule):
                    self.elapsed_before = time.perf_counter() - started
                    save_run_state(self)
            train_loss = {t: totals["loss_sums"][t] / totals["loss_counts"][t] for t in totals["loss_counts"]}
            record = {
                "epoch": self.epoch + 1,
                "train_loss": train_loss,
                "task_mix": dict(totals["loss_counts"]),  # batches trained per task this epoch
                "weights": self.weighting.weights(),
                "epoch_time_s": time.perf_counter() - epoch_start,
            } | memory_record(self.accelerator.device)
            self.weighting.end_epoch(train_loss)
            stop = self._end_epoch(record, started)
            self.epoch, self.step = self.epoch + 1, 0
            self.epoch_totals = self._fresh_totals()
            self.elapsed_before = time.perf_counter() - started
            save_run_state(self)
            if stop:
                result.stopped_early = True
                self.on_event("stopped", {"epoch": self.epoch, "patience": config.patience})
                break
        result.history, result.best = self.history, dict(self.best)
        result.weights_checksum = weights_checksums(self.accelerator, self.core)
        self.on_event(
            "end",
            {"output_dir": str(self.output_dir), "best": result.best, "wall_time_s": time.perf_counter() - started},
        )
        return result

    def train_step(
        self, tasks: tuple[str, ...], rows: dict[str, list[int]] | None = None, last: bool = False
    ) -> dict[str, dict]:
        """One training step, the loop's own: forward and backward of one batch of each task in `tasks`
        (`rows[task]`, rows of the task's training features; by default the next batch of its stream), then
        the optimizer step when this step closes a grad_accum window or is the epoch's `last`.
        Advances `step` and `global_step`; the loss is counted in the epoch's totals.
        Returns per task {"loss": float, "tokens": real (non-pad) tokens, "examples": rows in the batch}."""
        stats = self._step(tasks, rows or {}, last)
        self.step += 1
        self.global_step += 1
        return stats

    def _step(self, tasks: tuple[str, ...], rows: dict[str, list[int]], last: bool) -> dict[str, dict]:
        config, acc, totals = self.config, self.accelerator, self.epoch_totals
        losses, values, stats = {}, {}, {}
        for task in tasks:
            stream = self.streams[task]
            batch_rows = rows[task] if task in rows else stream.next_rows()
            batch = collate(stream.features, batch_rows, task, self.pad_id, stream.packed)
            batch = {k: v.to(acc.device) for k, v in batch.items()}
            with self.autocast():
                losses[task] = self.teachers.loss(task, self.model(task, **batch), batch, self.global_step)
            values[task] = losses[task].item()
            stats[task] = {
                "loss": values[task],
                "tokens": int(batch["attention_mask"].sum()),
                "examples": len(batch_rows),
            }
            totals["loss_sums"][task] += values[task]
            totals["loss_counts"][task] += 1
            totals["tokens"][task] += stats[task]["tokens"]
        monitor = config.interference_every and (self.global_step + 1) % config.interference_every == 0
        grads = None
        if config.pcgrad or monitor:
            weights = self.weighting.weights()
            shared = [p for p in self.core.encoder.parameters() if p.requires_grad]
            grads = task_gradients({t: weights[t] * loss for t, loss in losses.items()}, shared)
            if monitor and self.log:
                self.log.interference(gradient_cosines(grads), self.epoch + 1, self.global_step + 1)
        total = self.weighting.combine(losses, self.shared_layer)
        total = total / config.grad_accum
        acc.backward(self.scaler.scale(total) if self.scaler else total)
        if config.pcgrad:
            apply_pcgrad(grads, shared, self.pcgrad_rng, config.grad_accum, self.scaler)
        if (self.step + 1) % config.grad_accum == 0 or last:
            if self.scaler:
                self.scaler.unscale_(self.optimizer)  # clipping and the step see the true gradients
            if config.max_grad_norm:
                acc.clip_grad_norm_(self.model.parameters(), config.max_grad_norm)
            if optimizer_step(self.optimizer, self.scaler):
                self.scheduler.step()
                self.weighting.step()
            else:  # fp16 overflow: the schedule and the learned task weights wait too, their gradients dropped
                self.weighting.zero_grad(set_to_none=True)
            self.optimizer.zero_grad(set_to_none=True)
        self.weighting.observe(values)  # after the step: a window's weights come from earlier windows only
        return stats

    def _end_epoch(self, record: dict, started: float) -> bool:
        """Validate, keep the best checkpoints, log; True when early stopping says so (same on every rank)."""
        acc = self.accelerator
        stop = False
        eval_start = time.perf_counter()
        if self.is_main:
            valid, improved = {}, []
            validate = self.config.eval_strategy == "epoch" or self.epoch + 1 == self.config.epochs
            for task, td in self.data.items():
                if td.valid and validate:
                    batch = self.config.eval_batch_size
                    evaluation = tasks.get(task).evaluate(
                        self.core, td.valid, td.valid_features, batch, acc.device, self.autocast, {}
                    )
                    valid[task] = evaluation.metrics
                    score = evaluation.metrics[tasks.get(task).primary_metric]
                    if score > self.best.get(task, -math.inf):
                        self.best[task] = score
                        improved.append(task)
            record |= {
                "valid": valid,
                "eval_time_s": time.perf_counter() - eval_start,
                "wall_time_s": time.perf_counter() - started,
            }
            save_model(self.core, self.tokenizer, self.output_dir / "last")
            for task in improved:
                save_model(self.core, self.tokenizer, self.output_dir / f"best-{task}")
            self.log.epoch(record, self.global_step)
            self.history.append(record)
            self.on_event("eval", record | {"improved": improved, "best": dict(self.best)})
            self.epochs_without_gain = 0 if improved or not self.best else self.epochs_without_gain + 1
            stop = bool(self.config.patience) and self.epochs_without_gain >= self.config.patience
        stop = same_on_every_rank(acc, stop)
        acc.wait_for_everyone()
        return stop
