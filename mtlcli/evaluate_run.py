"""`mtl evaluate`'s engine: score a saved model on labelled files, write predictions, metrics and plots.

    report = evaluate_model("runs/demo/last", {"ner": "valid.conll", "qa": "dev.json"}, out_dir="eval")
    report.metrics["ner"]["f1"], report.metrics["qa"]["exact_match"]

Every number comes from mtlcli.metrics (seqeval, the official SQuAD v1.1 / v2.0 formulas, sklearn), on predictions
made by each task's `evaluate` (mtlcli.tasks) — the same code that validates during training. NER is predicted
per word (first sub-token), QA by an n-best search of valid spans over every window of the context.
The prediction files are written so that an independent scorer (conlleval, the official evaluate-v1.1.py)
reads them and finds the same numbers. The engine never prints: it reports through `on_event(kind, data)`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import tasks
from .devices import PRECISIONS, autocast_for, resolve_device, resolve_precision
from .errors import InputError, Problem, WorkError
from .fileio import write_atomic
from .spec import read_spec

METRICS_FILE = "metrics.json"
RUN_LOG = "metrics.jsonl"  # a training run directory's log; the model dirs (last/, best-*/) sit beside it

EventHandler = Callable[[str, dict], None]


@dataclass
class EvalReport:
    model_dir: str
    metrics: dict  # what metrics.json holds and --json prints
    worst: dict[str, list[dict]] = field(default_factory=dict)  # per task: the examples with most errors, worst first
    suite: list | None = None  # suite.CaseResult per case, when the suite ran
    notes: list[str] = field(default_factory=list)  # things the user should know (unknown gold types, skips)
    written: list[Path] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ checks


def model_tasks(model_dir: str | Path) -> list[str]:
    directory = Path(model_dir)
    if (
        directory.is_dir()
        and not (directory / "config.json").is_file()
        and (directory / "last" / "config.json").is_file()
    ):
        # a training run directory: the models are inside it
        inside = ", ".join(sorted(p.name for p in directory.iterdir() if (p / "config.json").is_file()))
        raise InputError(
            Problem(str(model_dir), "", f"a training run, not a model directory; give one of its models: {inside}")
        )
    return read_spec(model_dir).tasks


def check_request(model_dir: str | Path, files: dict[str, str], suite: bool = False) -> list[str]:
    """Cheap checks before anything heavy loads: the model exists and has a head for every task asked.
    Returns the model's tasks."""
    have = model_tasks(model_dir)
    for task in files:
        if task not in have:
            titles = ", ".join(tasks.get(t).title for t in have) or "none"
            raise InputError(
                Problem(
                    str(model_dir),
                    "",
                    f"the model has no {tasks.get(task).title} head (its tasks: {titles}); drop --{task}",
                )
            )
    if suite and not {"ner", "qa"} & set(have):
        raise InputError(Problem(str(model_dir), "", "--suite needs a model with an NER or QA head"))
    if not files and not suite:
        raise InputError("nothing to evaluate: give --ner, --qa and/or --cls with a labelled file, or --suite")
    return have


def _check_out_dir(out_dir: str | Path | None) -> Path | None:
    if out_dir is None:
        return None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(Problem(str(out), "", "--out exists and is not a directory"))
    return out


# ------------------------------------------------------------------------------------------ engine


def evaluate_model(
    model_dir: str | Path,
    files: dict[str, str],
    *,
    out_dir: str | Path | None = None,
    strict: bool = False,
    ner_decoding: str | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    batch_size: int = 32,
    n_best: int = 20,
    max_answer_length: int | None = None,
    null_threshold: float | None = None,
    worst: int = 0,
    suite: bool = False,
    skip_bad: bool = False,
    split: str = "",
    columns: dict[str, str] | None = None,
    on_event: EventHandler = lambda kind, data: None,
) -> EvalReport:
    """Evaluate `model_dir` on {task: labelled file}; optionally run the validation suite and write `out_dir`.
    Hugging Face datasets inputs: `split` of every DatasetDict (default test, else validation), `columns` a column
    mapping per task (mtlcli.data.hf_data)."""
    from .data.hf_data import DatasetOptions, is_dataset
    from .task_data import data_path

    files = {task: files[task] for task in tasks.names() if files.get(task)}
    check_request(model_dir, files, suite)
    out = _check_out_dir(out_dir)
    if batch_size < 1 or n_best < 1 or (max_answer_length is not None and max_answer_length < 1):
        raise InputError("--batch-size, --n-best and --max-answer-length must be positive")
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision '{precision}' (expected {', '.join(PRECISIONS)})")
    report = EvalReport(str(model_dir), {"model": str(model_dir)})

    # every file read and checked before the model loads
    data = {}
    for task, path in files.items():
        definition = tasks.get(task)
        options = DatasetOptions(
            "test",
            split if is_dataset(data_path(path)) else "",
            (columns or {}).get(task, ""),
            split_option="--split NAME",
            columns_option=f"--columns {task}=...",
        )
        result = definition.read(data_path(path), skip_bad, options)
        if result.skipped:
            report.notes.append(f"{definition.title}: skipped {len(result.skipped)} bad record(s) of {path}")
        definition.check_scorable(path, result.examples)
        data[task] = result.examples
    on_event("data", {task: len(examples) for task, examples in data.items()})

    from .inference.onnx_model import is_onnx_export

    if is_onnx_export(model_dir):  # run by onnxruntime
        from .inference.predictor import load_onnx_export

        model, tokenizer, precision = load_onnx_export(model_dir, device, "auto" if precision == "fp32" else precision)
        device, autocast = "cpu", contextlib.nullcontext
    else:
        from .model import load_model

        device = resolve_device(device)
        precision = resolve_precision(precision, device)
        autocast = autocast_for(device, precision)
        model, tokenizer = load_model(model_dir, device)
    spec = model.spec
    report.metrics |= {"device": device, "precision": precision}
    on_event("loaded", {"device": device, "precision": precision, "tasks": spec.tasks})

    evaluations = {}
    for task, examples in data.items():
        on_event("task", {"task": task, "examples": len(examples)})
        definition = tasks.get(task)
        features = definition.evaluation_features(examples, tokenizer, spec, report.notes)
        options = {
            "strict": strict,
            "ner_decoding": ner_decoding,  # None: the model's own
            "n_best": n_best,
            "max_answer_length": max_answer_length,
            "null_threshold": null_threshold,
        }
        evaluation = definition.evaluate(model, examples, features, batch_size, device, autocast, options)
        evaluations[task] = evaluation
        scores = {"file": files[task], "examples": len(examples)} | definition.settings_record(options, spec)
        report.metrics[task] = scores | evaluation.metrics
        if worst:
            report.worst[task] = definition.worst(examples, evaluation, worst)

    if suite:
        from .suite import run_suite, summarize

        on_event("task", {"task": "suite"})
        report.suite = run_suite(model, tokenizer, device)
        report.metrics["suite"] = {"summary": summarize(report.suite), "cases": [c.to_dict() for c in report.suite]}

    if report.notes:
        report.metrics["notes"] = report.notes
    if out is not None:
        on_event("writing", {"out_dir": str(out)})
        report.written = write_outputs(out, data, evaluations, report.metrics, model_dir)
    return report


def run_log(model_dir: str | Path) -> Path | None:
    """metrics.jsonl of the training run the model directory belongs to (runs/x/last → runs/x/metrics.jsonl)."""
    path = Path(model_dir).resolve().parent / RUN_LOG
    return path if path.is_file() else None


def epoch_records(path: Path) -> list[dict]:
    """The "epoch" records of a metrics.jsonl; a torn last line (a run still writing) is skipped."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("type") == "epoch":
            records.append(record)
    return records


def write_outputs(out: Path, data: dict, evaluations: dict, metrics: dict, model_dir) -> list[Path]:
    """Each file is written whole or not at all (temp file + rename); an OSError becomes a WorkError."""
    from . import plots

    written = []

    def put(name: str, content: str | bytes) -> None:
        path = out / name
        try:
            write_atomic(path, content)
        except OSError as err:  # a full disk, a read-only directory: the work failed (exit 1), not the input
            raise WorkError(f"could not write {path}: {err.strerror or err}") from None
        written.append(path)

    for task, evaluation in evaluations.items():
        put(tasks.get(task).prediction_file, tasks.get(task).prediction_text(data[task], evaluation))
    put(METRICS_FILE, json.dumps(metrics, ensure_ascii=False, indent=2) + "\n")
    for task, evaluation in evaluations.items():
        confusion = evaluation.metrics.get("confusion")
        if confusion:
            title = f"{tasks.get(task).title} confusion ({tasks.get(task).confusion_of})"
            put(f"{task}_confusion.png", plots.confusion_png(confusion["labels"], confusion["matrix"], title))
    log = run_log(model_dir)
    if log is not None:
        records = epoch_records(log)
        if records:
            put("learning_curves.png", plots.learning_curves_png(records, title=f"training run {log.parent.name}"))
    return written
