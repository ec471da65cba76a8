"""`mtl benchmark`'s engine: parameters, training and inference speed, peak memory and (optionally) accuracy
of several backbones on the same inputs, and the joint model against one model per task on the same budget.

Everything is measured through the real code paths, never a copy of them:
  - a training step is the trainer's own `Run.train_step` (forward + backward + clip + optimizer step) on
    the trainer's own batches: one batch of one task, as in the sampled step mode; tokens and examples are
    what the step reports;
  - inference is the prediction path of `mtl predict-*`: a copy of the model prepared as those commands
    prepare theirs (`inference.invariant.prepare_for_inference`), and the task's own `predict` (tokenization +
    batched forward + decoding) on raw inputs built from the validation examples, one call per request of
    batch-size inputs;
  - accuracy and the single-task comparison are real `train()` runs, scored by the trainer's validation.

Throughput counts real (non-pad) tokens. Timings are taken after warm-up steps; a figure is the median over
repeats. The engine never prints: it reports through `on_event(kind, data)`. Events: "machine" (the machine
description), "note" {message}, "phase" {label, total}, "advance" {completed}, "model" {the measured row}.

The modules, one concern each: `settings` (options, the shared config, counts, backbones), `machine` (the
machine description, peak memory), `probes` (the training and inference speed probes), `compare` (training
runs, joint against single-task), `run` (the whole benchmark), `rows` (flat CSV rows) and `report` (tables,
Markdown, CSV text and the chart: pure functions of the result).
"""

from .probes import TrainingProbe, measure_inference, measure_training
from .rows import csv_rows
from .run import measure_model, run_benchmark
from .settings import COMPARE_MODES, BenchmarkOptions, counts, resolve_config

__all__ = [
    "COMPARE_MODES",
    "BenchmarkOptions",
    "TrainingProbe",
    "counts",
    "csv_rows",
    "measure_inference",
    "measure_model",
    "measure_training",
    "resolve_config",
    "run_benchmark",
]
