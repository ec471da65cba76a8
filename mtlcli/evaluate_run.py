"""`mtl evaluate`'s engine: score a saved model on labelled files, write predictions, metrics and plots.

    report = evaluate_model("runs/demo/last", {"ner": "valid.conll", "qa": "dev.json"}, out_dir="eval")
    report.metrics["ner"]["f1"], report.metrics["qa"]["exact_match"]

Every number comes from mtlcli.metrics (seqeval, the official SQuAD v1.1 formula, sklearn), on predictions
made by mtlcli.evaluation.evaluate_task — the same code that validates during training. NER is predicted
per word (first sub-token), QA by an n-best search of valid spans over every window of the context.
The prediction files are written so that an independent scorer (conlleval, the official evaluate-v1.1.py)
reads them and finds the same numbers. The engine never prints: it reports through `on_event(kind, data)`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .devices import PRECISIONS, autocast_for, resolve_device, resolve_precision
from .errors import InputError, Problem, WorkError
from .fileio import write_atomic
from .metrics import exact_match, token_f1
from .spec import read_spec

TASKS = ("ner", "qa", "cls")
TASK_FLAGS = {"ner": "--ner", "qa": "--qa", "cls": "--cls"}
TASK_TITLES = {"ner": "NER", "qa": "QA", "cls": "classification"}
PREDICTION_FILES = {"ner": "ner_predictions.txt", "qa": "qa_predictions.json", "cls": "cls_predictions.csv"}
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
    if directory.is_dir() and not (directory / "config.json").is_file() and (directory / "last" / "config.json").is_file():
        # a training run directory: the models are inside it
        inside = ", ".join(sorted(p.name for p in directory.iterdir() if (p / "config.json").is_file()))
        raise InputError(Problem(str(model_dir), "", f"a training run, not a model directory; "
                                                     f"give one of its models: {inside}"))
    return read_spec(model_dir).tasks


def check_request(model_dir: str | Path, files: dict[str, str], suite: bool = False) -> list[str]:
    """Cheap checks before anything heavy loads: the model exists and has a head for every task asked.
    Returns the model's tasks."""
    tasks = model_tasks(model_dir)
    for task in files:
        if task not in tasks:
            have = ", ".join(TASK_TITLES[t] for t in tasks) or "none"
            raise InputError(Problem(str(model_dir), "", f"the model has no {TASK_TITLES[task]} head "
                                                         f"(its tasks: {have}); drop {TASK_FLAGS[task]}"))
    if suite and not {"ner", "qa"} & set(tasks):
        raise InputError(Problem(str(model_dir), "", "--suite needs a model with an NER or QA head"))
    if not files and not suite:
        raise InputError("nothing to evaluate: give --ner, --qa and/or --cls with a labelled file, or --suite")
    return tasks


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
    device: str = "cpu",
    precision: str = "fp32",
    batch_size: int = 32,
    n_best: int = 20,
    max_answer_length: int | None = None,
    worst: int = 0,
    suite: bool = False,
    skip_bad: bool = False,
    on_event: EventHandler = lambda kind, data: None,
) -> EvalReport:
    """Evaluate `model_dir` on {task: labelled file}; optionally run the validation suite and write `out_dir`."""
    from .tasks import READERS, data_path

    files = {task: files[task] for task in TASKS if files.get(task)}
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
        result = READERS[task](data_path(path), skip_bad=skip_bad)
        if result.skipped:
            report.notes.append(f"{TASK_TITLES[task]}: skipped {len(result.skipped)} bad record(s) of {path}")
        if task == "qa":
            _check_answers(path, result.examples)
        data[task] = result.examples
    on_event("data", {task: len(examples) for task, examples in data.items()})

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
        evaluation = _evaluate(model, tokenizer, task, examples, strict, device, autocast, batch_size, n_best,
                               max_answer_length, report)
        evaluations[task] = evaluation
        scores = {"file": files[task], "examples": len(examples)}
        if task == "ner":
            scores["mode"] = "strict" if strict else "default"  # seqeval's mode: strict IOB2, or conlleval's
        if task == "qa":
            scores |= {"n_best": n_best, "max_answer_length": max_answer_length or spec.max_answer_length}
        report.metrics[task] = scores | evaluation.metrics
        if worst:
            report.worst[task] = worst_examples(task, examples, evaluation, worst)

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


def _check_answers(path: str, examples: list) -> None:
    missing = [ex.id for ex in examples if not ex.answers]
    if missing:
        raise InputError(Problem(path, "", f"{len(missing)} question(s) have no gold answer (first: id {missing[0]}); "
                                           "evaluation needs at least one answer per question"))


def _evaluate(model, tokenizer, task, examples, strict, device, autocast, batch_size, n_best, max_answer_length,
              report: EvalReport):
    from .evaluation import evaluate_task
    from .features import IGNORE, cls_features, ner_features, qa_features

    spec = model.spec
    if task == "ner":
        # gold tags the model never saw are still scored (seqeval works on strings); they just get no label id
        label_ids = {label: i for i, label in enumerate(spec.ner_labels)}
        gold_tags = {tag for ex in examples for tag in ex.tags}
        unknown = sorted({tag[2:] for tag in gold_tags - set(label_ids)})
        if unknown:
            report.notes.append(f"NER: gold entity type(s) the model has no label for: {', '.join(unknown)} "
                                "(scored as misses)")
        label_ids |= {tag: IGNORE for tag in gold_tags if tag not in label_ids}
        features = ner_features(examples, tokenizer, label_ids, spec.max_length)
    elif task == "qa":
        features = qa_features(examples, tokenizer, spec.qa_max_length, spec.doc_stride, training=False)
    else:
        known = set(spec.cls_labels)
        unknown = sorted({ex.label for ex in examples} - known)
        if unknown:
            report.notes.append(f"classification: gold label(s) the model has no class for: {', '.join(unknown[:10])}"
                                + (f" (and {len(unknown) - 10} more)" if len(unknown) > 10 else ""))
        features = cls_features(examples, tokenizer, {label: i for i, label in enumerate(spec.cls_labels)},
                                spec.max_length)
    return evaluate_task(model, task, examples, features, batch_size, device, autocast, strict=strict,
                         n_best=n_best, max_answer_length=max_answer_length)


# ------------------------------------------------------------------------------------------ errors


def _entities(tags: list[str]) -> set[tuple[str, int, int]]:
    from seqeval.metrics.sequence_labeling import get_entities

    return set(get_entities(list(tags)))


def worst_examples(task: str, examples: list, evaluation, limit: int) -> list[dict]:
    """The `limit` examples with the most errors, worst first (ties keep file order).

    NER: most entity errors (missed + spurious, conlleval chunks), then most wrong word tags;
    QA: questions not exactly matched, lowest F1 first; classification: wrong labels, most confident first."""
    rows = []
    if task == "ner":
        for i, (ex, pred) in enumerate(zip(examples, evaluation.predictions)):
            wrong_tags = sum(g != p for g, p in zip(ex.tags, pred))
            if not wrong_tags:
                continue
            gold, guess = _entities(ex.tags), _entities(pred)
            missed = [_entity_dict(ex.tokens, e) for e in sorted(gold - guess, key=lambda e: e[1])]
            spurious = [_entity_dict(ex.tokens, e) for e in sorted(guess - gold, key=lambda e: e[1])]
            rows.append(((-(len(missed) + len(spurious)), -wrong_tags, i), {
                "id": ex.id, "tokens": list(ex.tokens), "gold": list(ex.tags), "pred": list(pred),
                "entity_errors": len(missed) + len(spurious), "tag_errors": wrong_tags,
                "missed": missed, "spurious": spurious,
            }))
    elif task == "qa":
        for i, (ex, span) in enumerate(zip(examples, evaluation.predictions)):
            golds = [a.text for a in ex.answers]
            if exact_match(span.text, golds):
                continue
            f1 = token_f1(span.text, golds)
            rows.append(((f1, -span.score, i), {
                "id": ex.id, "question": ex.question, "context": ex.context, "gold": golds,
                "pred": span.text, "start": span.start, "end": span.end, "score": span.score, "f1": 100.0 * f1,
            }))
    else:
        for i, (ex, pred) in enumerate(zip(examples, evaluation.predictions)):
            if pred == ex.label:
                continue
            confidence = max(evaluation.detail[i]) if evaluation.detail else 0.0
            rows.append(((-confidence, i), {"id": ex.id, "text": ex.text, "gold": ex.label, "pred": pred,
                                           "probability": confidence}))
    rows.sort(key=lambda row: row[0])
    return [row for _, row in rows[:limit]]


def _entity_dict(tokens: list[str], entity: tuple[str, int, int]) -> dict:
    kind, first, last = entity
    return {"type": kind, "text": " ".join(tokens[first:last + 1]), "first": first, "last": last}


# ------------------------------------------------------------------------------------------ files


_SPACE = re.compile(r"[ \t\r\n]+")


def conll_token(token: str) -> str:
    """A token safe for a space-separated column file (JSONL tokens may hold spaces): ASCII blanks → '_'."""
    return _SPACE.sub("_", token) or "_"


def ner_predictions_text(examples: list, predictions: list[list[str]]) -> str:
    """CoNLL columns `token gold pred`, a blank line between sentences: what conlleval reads."""
    blocks = ["\n".join(f"{conll_token(t)} {g} {p}" for t, g, p in zip(ex.tokens, ex.tags, pred))
              for ex, pred in zip(examples, predictions)]
    return "\n\n".join(blocks) + "\n"


def qa_predictions_text(examples: list, spans: list) -> str:
    """The official SQuAD prediction file: {question id: answer text}."""
    return json.dumps({ex.id: span.text for ex, span in zip(examples, spans)}, ensure_ascii=False, indent=2) + "\n"


def cls_predictions_text(examples: list, predictions: list[str], probabilities: list | None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "text", "gold", "pred", "probability"])
    for i, (ex, pred) in enumerate(zip(examples, predictions)):
        probability = max(probabilities[i]) if probabilities else ""
        writer.writerow([ex.id, ex.text, ex.label, pred, f"{probability:.6f}" if probability != "" else ""])
    return buffer.getvalue()


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
        examples = data[task]
        if task == "ner":
            put(PREDICTION_FILES[task], ner_predictions_text(examples, evaluation.predictions))
        elif task == "qa":
            put(PREDICTION_FILES[task], qa_predictions_text(examples, evaluation.predictions))
        else:
            put(PREDICTION_FILES[task], cls_predictions_text(examples, evaluation.predictions, evaluation.detail))
    put(METRICS_FILE, json.dumps(metrics, ensure_ascii=False, indent=2) + "\n")
    for task in ("ner", "cls"):
        if task in evaluations:
            confusion = evaluations[task].metrics["confusion"]
            title = f"{TASK_TITLES[task]} confusion ({'token-level entity types' if task == 'ner' else 'labels'})"
            put(f"{task}_confusion.png", plots.confusion_png(confusion["labels"], confusion["matrix"], title))
    log = run_log(model_dir)
    if log is not None:
        records = epoch_records(log)
        if records:
            put("learning_curves.png", plots.learning_curves_png(records, title=f"training run {log.parent.name}"))
    return written
