"""`mtl evaluate`: parse options, run the evaluation engine, render its report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..render import confusion_table, console, escape, fmt, new_table, note, print_json, tagged_text, title
from .common import add_examples, handle_errors
from .options import (
    NER_DECODING_HELP,
    ClsFileOption,
    DeviceOption,
    InferenceBatchOption,
    JsonOption,
    MaxAnswerLengthOption,
    ModelArgument,
    NerDecoding,
    NerFileOption,
    NullThresholdOption,
    PrecisionOption,
    QaFileOption,
    SkipBadOption,
)

if TYPE_CHECKING:
    from rich.table import Table

EXAMPLES = """
Examples:

  mtl evaluate runs/demo/last --ner conll/test.txt --qa squad/dev.json --out eval/

  mtl evaluate runs/demo/best-ner --ner @demo/wikigold_valid.conll --strict --show-errors 5

  mtl evaluate runs/demo/last --suite          # the built-in 5 NER + 5 QA validation cases

  mtl evaluate runs/demo/last --qa dev.json --json | jq .qa.f1

  mtl evaluate runs/demo/last --ner conll2003_dataset/ --split validation    # a save_to_disk DatasetDict
"""

STATUS_SYMBOLS = {"pass": "✅", "partial": "⚠️ ", "fail": "❌"}


@handle_errors
def evaluate_command(
    model_dir: ModelArgument,
    ner: NerFileOption = None,
    qa: QaFileOption = None,
    cls: ClsFileOption = None,
    suite: Annotated[bool, typer.Option("--suite", help="Run the built-in 5 NER + 5 QA validation cases.")] = False,
    out: Annotated[
        Optional[str], typer.Option("--out", "-o", help="Write predictions, metrics.json and plots here.")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="NER: seqeval strict mode (IOB2) instead of conlleval's default.")
    ] = False,
    ner_decoding: Annotated[NerDecoding | None, typer.Option(help=NER_DECODING_HELP, show_default=False)] = None,
    show_errors: Annotated[
        int, typer.Option("--show-errors", metavar="N", help="Show the N examples with the most errors per task.")
    ] = 0,
    json_output: JsonOption = False,
    device: DeviceOption = "cpu",
    precision: PrecisionOption = "fp32",
    batch_size: InferenceBatchOption = 32,
    n_best: Annotated[int, typer.Option(help="QA: start/end candidates searched per window.")] = 20,
    max_answer_length: MaxAnswerLengthOption = None,
    null_threshold: NullThresholdOption = None,
    skip_bad: SkipBadOption = False,
    split: Annotated[
        str, typer.Option(help="Datasets inputs: the DatasetDict split to score (default: test, else validation).")
    ] = "",
    columns: Annotated[
        list[str],
        typer.Option(
            "--columns", metavar="TASK=MAP", help="Datasets inputs: column names, e.g. ner=words,tags (repeatable)."
        ),
    ] = [],
) -> None:
    """Score a model with the standard metrics (seqeval, official SQuAD v1.1 or v2.0 EM/F1, sklearn)."""
    from .. import tasks
    from ..errors import InputError
    from ..evaluate_run import check_request, evaluate_model

    if show_errors < 0:
        raise InputError("--show-errors must be 0 or more")
    mappings = dict(mapping.partition("=")[::2] for mapping in columns)
    if any(not names or task not in tasks.names() for task, names in mappings.items()):
        raise InputError(f"--columns takes TASK=NAMES with TASK one of {', '.join(tasks.names())}, e.g. ner=words,tags")
    files = {task: path for task, path in (("ner", ner), ("qa", qa), ("cls", cls)) if path}  # options per task
    check_request(model_dir, files, suite)  # before torch loads: a wrong task answers at once

    with console.status("loading the model") as status:

        def on_event(kind: str, data: dict) -> None:
            if kind == "loaded":
                status.update(f"evaluating on {data['device']} ({data['precision']})")
            elif kind == "task":
                what = (
                    "validation suite"
                    if data["task"] == "suite"
                    else f"{title(data['task'])}: {data['examples']} examples"
                )
                status.update(f"evaluating {what}")
            elif kind == "writing":
                status.update(f"writing {data['out_dir']}")

        report = evaluate_model(
            model_dir,
            files,
            out_dir=out,
            strict=strict,
            ner_decoding=ner_decoding,
            device=device,
            precision=precision,
            batch_size=batch_size,
            n_best=n_best,
            max_answer_length=max_answer_length,
            null_threshold=null_threshold,
            worst=show_errors,
            suite=suite,
            skip_bad=skip_bad,
            split=split,
            columns=mappings,
            on_event=on_event,
        )

    render_report(report)
    if json_output:
        print_json(report.metrics)


add_examples(evaluate_command, EXAMPLES)


# --------------------------------------------------------------------------------------- rendering


def render_report(report) -> None:
    from .. import tasks

    metrics = report.metrics
    for message in report.notes:
        note(message)
    evaluated = [name for name in tasks.names() if name in metrics]
    if evaluated:
        console.print(summary_table(metrics, evaluated))
    if "best_f1_threshold" in metrics.get("qa", {}):
        qa = metrics["qa"]
        note(
            f"QA: best null threshold {qa['best_f1_threshold']:.4g} (F1 {qa['best_f1']:.2f}; exact match "
            f"{qa['best_exact_match']:.2f} at {qa['best_exact_match_threshold']:.4g}): pass it as --null-threshold"
        )
    for name in evaluated:
        task, scores = tasks.get(name), metrics[name]
        if task.per_label:
            key, what = task.per_label
            mode = {"strict": " seqeval strict mode (IOB2)", "default": " seqeval default mode (conlleval)"}
            console.print(
                scores_table(
                    f"{task.title} per {what} (%){mode.get(scores.get('mode'), '')}", scores[key], scores, what
                )
            )
        if "confusion" in scores:
            console.print(
                confusion_table(
                    f"{task.title} confusion of {task.confusion_of} (rows gold, columns predicted)",
                    scores["confusion"]["labels"],
                    scores["confusion"]["matrix"],
                )
            )
    for task, rows in report.worst.items():
        render_errors(task, rows)
    if report.suite is not None:
        render_suite(report.suite, metrics["suite"]["summary"])
    if report.written:
        console.print("wrote " + ", ".join(escape(str(path)) for path in report.written), highlight=False)


def summary_table(metrics: dict, evaluated: list[str]) -> Table:
    from .. import tasks

    table = new_table(title=f"evaluation of {escape(metrics['model'])}", title_justify="left")
    for column in ("task", "file", "examples", "metric", "value (%)"):
        table.add_column(column, justify="right" if column in ("examples", "value (%)") else "left")
    for name in evaluated:
        task, scores = tasks.get(name), metrics[name]
        for i, metric in enumerate(m for m in task.metrics if m.key in scores):
            first = i == 0
            table.add_row(
                task.title if first else "",
                escape(scores["file"]) if first else "",
                str(scores["examples"]) if first else "",
                metric.label,
                f"{metric.percent(scores[metric.key]):.2f}",
            )
        table.add_section()
    return table


def scores_table(heading: str, per_label: dict, totals: dict, what: str) -> Table:
    table = new_table(title=heading, title_justify="left")
    table.add_column(what)
    for column in ("precision", "recall", "F1", "support"):
        table.add_column(column, justify="right")
    for label, row in per_label.items():
        table.add_row(
            escape(label),
            fmt(row["precision"], True),
            fmt(row["recall"], True),
            fmt(row["f1"], True),
            str(row["support"]),
        )
    table.add_section()
    if "precision" in totals:  # NER: micro over entities
        table.add_row(
            "micro avg",
            fmt(totals["precision"], True),
            fmt(totals["recall"], True),
            fmt(totals["f1"], True),
            str(sum(row["support"] for row in per_label.values())),
            style="bold",
        )
    table.add_row(
        "macro avg",
        fmt(totals["macro_precision"], True),
        fmt(totals["macro_recall"], True),
        fmt(totals["macro_f1"], True),
        str(sum(row["support"] for row in per_label.values())),
        style="bold",
    )
    return table


def render_errors(task: str, rows: list[dict]) -> None:
    if not rows:
        console.print(f"{title(task)}: no errors to show")
        return
    console.rule(f"{title(task)}: {len(rows)} example(s) with the most errors")
    for row in rows:
        if task == "ner":
            console.print(
                f"[bold]{escape(row['id'])}[/]: {row['entity_errors']} entity error(s), "
                f"{row['tag_errors']} wrong tag(s)",
                highlight=False,
            )
            console.print("  gold ", tagged_text(row["tokens"], row["gold"]))
            console.print("  pred ", tagged_text(row["tokens"], row["pred"]))
        elif task == "qa":
            console.print(
                f"[bold]{escape(row['id'])}[/]: {escape(row['question'])}  (F1 {row['f1']:.1f})", highlight=False
            )
            console.print(f"  gold [green]{escape(' | '.join(row['gold'])) or '(no answer)'}[/]", highlight=False)
            console.print(
                f"  pred [red]{escape(row['pred']) or '(no answer)'}[/]  (p={row['score']:.2f})", highlight=False
            )
        elif "text" in row:  # classification and other tasks over one text: gold, prediction, its probability
            console.print(f"[bold]{escape(row['id'])}[/]: {escape(row['text'][:200])}", highlight=False)
            if "text_pair" in row:
                console.print(f"  ↳ {escape(row['text_pair'][:200])}", highlight=False)
            console.print(
                f"  gold [green]{escape(str(row['gold']))}[/]  pred [red]{escape(str(row['pred']))}[/] "
                f"(p={row.get('probability', 0.0):.2f})",
                highlight=False,
            )
        else:
            console.print(escape(json.dumps(row, ensure_ascii=False)), highlight=False)


def render_suite(cases, summary: dict) -> None:
    """One table per task: ✅ exact, ⚠️ partial, ❌ miss (contexts are in metrics.json, not repeated here)."""
    for task in ("ner", "qa"):
        rows = [case for case in cases if case.task == task]
        if not rows:
            continue
        table = new_table(title=f"validation suite: {title(task)} (the built-in cases)", title_justify="left")
        for column in ("", "case", "sentence" if task == "ner" else "question", "expected", "predicted", "detail"):
            table.add_column(column)
        for case in rows:
            if task == "ner":
                shown = case.text
                expected = ", ".join(f"{t} ({k})" for t, k in case.expected)
                predicted = ", ".join(f"{t} ({k})" for t, k in case.predicted) or "(none)"
            else:
                shown, expected, predicted = case.question, case.expected[0], case.predicted[0] or "(no answer)"
            table.add_row(
                STATUS_SYMBOLS[case.status],
                escape(case.name),
                escape(shown),
                escape(expected),
                escape(predicted),
                escape(case.detail),
            )
        console.print(table)
        counts = summary[task]
        console.print(
            f"{title(task)}: {counts['pass']}/{counts['cases']} exact ✅, {counts['partial']} partial ⚠️ , "
            f"{counts['fail']} missed ❌",
            highlight=False,
        )
