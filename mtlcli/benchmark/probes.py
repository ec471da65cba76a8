"""The speed probes: the trainer's own Run for one backbone, its training step timed on batches of one task,
and its prediction path (a prepared copy of its model, the task's own predict) timed per batch size."""

from __future__ import annotations

import functools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..config import TrainConfig
from ..inputs import QaItem, TextItem
from .machine import sync
from .settings import Candidate, EventHandler, clamp_ids, phase


def build_run(config: TrainConfig, candidate: Candidate, workdir: Path, on_event: EventHandler, sizes: dict):
    """The trainer's own Run (data, features, model, optimizer, accelerate) for `config` on this backbone."""
    from ..training.trainer import Run

    out = Path(tempfile.mkdtemp(prefix="measure-", dir=workdir))
    config = config.replace(backbone=candidate.backbone, output_dir=str(out), save_every=0)

    def forward(event: str, data: dict) -> None:
        if event == "data":
            sizes.update(
                {
                    task: {"train": row["train"], "train_features": row["train_features"], "valid": row["valid"]}
                    for task, row in data.items()
                }
            )
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
    return {
        "encoder": counts_["encoder"],
        "heads": sum(heads.values()),
        "per_head": heads,
        "total": counts_["encoder"] + sum(heads.values()),
    }


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
        self.repeats.append(
            {
                "seconds": seconds,
                "tokens": sum(b["tokens"] for b in batches),
                "examples": sum(b["examples"] for b in batches),
                "batches": len(batches),
                "encoder_passes": self.passes - passes,
            }
        )

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
    advance = phase(
        on_event, f"{name}: training {task.upper()}", counts_["warmup"] + counts_["repeats"] * counts_["steps"]
    )
    try:
        for _ in range(counts_["warmup"]):
            probe.step()
            advance()
        for _ in range(counts_["repeats"]):
            probe.timed(counts_["steps"], advance)
    finally:
        probe.close()
    return probe.summary()


# raw inputs of the predict path, built from a labelled example (what `mtl predict-*` would be given)
RAW_INPUTS = {
    "ner": lambda ex: TextItem(" ".join(ex.tokens), ex.id),
    "qa": lambda ex: QaItem(ex.question, ex.context, ex.id),
    "cls": lambda ex: TextItem(ex.text, ex.id, ex.text_pair),
}


def inference_model(run, candidate: Candidate | None = None):
    """The run's model as the predict commands use it: a copy prepared by `prepare_for_inference`
    (batch-invariant Linear layers, inputs padded to width buckets, no pooler) without accelerate's
    mixed-precision wrapper (predict autocasts itself). The copy has modules of its own but shares the run's
    weights, so it costs no second set of weights and leaves the training model as it was. For a candidate
    whose vocabulary is smaller than the tokenizer, ids above it become `candidate.clamp` before the encoder."""
    import copy
    import itertools

    from ..inference.invariant import prepare_for_inference

    core = run.core
    shared = {id(tensor): tensor for tensor in itertools.chain(core.parameters(), core.buffers())}
    model = run.accelerator.unwrap_model(copy.deepcopy(core, shared), keep_fp32_wrapper=False)
    if candidate is not None and candidate.clamp is not None:
        vocab, replacement = candidate.vocab_size, candidate.clamp

        def clamp(module, args, kwargs):
            ids = kwargs["input_ids"]
            return args, kwargs | {"input_ids": ids.masked_fill(ids >= vocab, replacement)}

        model.encoder.register_forward_pre_hook(clamp, with_kwargs=True)
    return prepare_for_inference(model)


def measure_inference(run, task: str, counts_: dict, name: str, on_event: EventHandler, model=None) -> dict:
    """The prediction path, timed per batch size (1 and the config's): the first `infer_examples` validation
    examples (training ones without validation data) become raw inputs (NER: the sentence's words joined by
    spaces; QA: question and context; classification: the text), split into requests of `batch_size` inputs,
    and each request is one call of the task's own `predict` (tokenization + batched forward + decoding to
    entities, answer spans or label probabilities) on `model`, by default `inference_model(run)`: the model
    prepared as the predict commands prepare theirs, with their autocast. Latency is per request, after one
    untimed request; tokens are the real (non-pad) tokens the encoder ran on (QA: of every question window).
    A task without raw inputs here (one registered outside mtl) times its `evaluate` per request on features
    built beforehand (forward + decoding + scoring)."""
    import numpy as np

    from .. import tasks as registry
    from ..devices import autocast_for

    model = model if model is not None else inference_model(run)
    definition = registry.get(task)
    td = run.data[task]
    examples = (td.valid or td.train)[: counts_["infer_examples"]]
    device = str(run.accelerator.device)
    autocast = autocast_for(device, run.precision)
    sizes = sorted({1, run.config.batch_size})
    advance = phase(on_event, f"{name}: inference {task.upper()}", len(sizes) * len(examples))
    masks: list = []

    def count_tokens(module, args, kwargs) -> None:
        masks.append(kwargs["attention_mask"])  # summed after the clock stops

    results = {}
    for batch_size in sizes:
        chunks = [examples[i : i + batch_size] for i in range(0, len(examples), batch_size)]
        if task in RAW_INPUTS:
            requests = [[RAW_INPUTS[task](ex) for ex in chunk] for chunk in chunks]
            call = functools.partial(
                definition.predict, model, run.tokenizer, batch_size=batch_size, device=device, autocast=autocast
            )
        else:
            requests = [
                (chunk, definition.evaluation_features(chunk, run.tokenizer, model.spec, [])) for chunk in chunks
            ]
            call = functools.partial(
                _evaluate, definition, model, batch_size=batch_size, device=device, autocast=autocast
            )
        call(requests[0])  # warm-up
        masks.clear()
        latencies = []
        counter = model.encoder.register_forward_pre_hook(count_tokens, with_kwargs=True)
        try:
            for request, chunk in zip(requests, chunks):
                start = time.perf_counter()
                call(request)  # decoded on the CPU: synchronized
                latencies.append(time.perf_counter() - start)
                advance(len(chunk))
        finally:
            counter.remove()
        seconds, tokens = sum(latencies), sum(int(mask.sum()) for mask in masks)
        results[str(batch_size)] = {
            "examples_per_s": len(examples) / seconds,
            "tokens_per_s": tokens / seconds,
            "p50_ms": float(np.percentile(latencies, 50)) * 1000,
            "p95_ms": float(np.percentile(latencies, 95)) * 1000,
            "batches": len(latencies),
            "examples": len(examples),
            "tokens": tokens,
            "path": "predict" if task in RAW_INPUTS else "evaluate",
        }
    return results


def _evaluate(definition, model, request: tuple, batch_size: int, device, autocast):
    examples, features = request
    return definition.evaluate(model, examples, features, batch_size, device, autocast, {})
