"""`mtl evaluate`: parse options, run the evaluation engine, render its report."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..render import TASK_NAMES, confusion_table, console, fmt, note, print_json, tagged_text
from .common import handle_errors

EXAMPLES = """
Examples:

  mtl evaluate runs/demo/last --ner conll/test.txt --qa squad/dev.json --out eval/

  mtl evaluate runs/demo/best-ner --ner @demo/wikigold_valid.conll --strict --show-errors 5

  mtl evaluate runs/demo/last --suite          # the seed's 5 NER + 5 QA cases

  mtl evaluate runs/demo/last --qa dev.json --json | jq .qa.f1
"""

STATUS_SYMBOLS = {"pass": "✅", "partial": "⚠️ ", "fail": "❌"}


@handle_errors
def evaluate_command(
    model_dir: Annotated[str, typer.Argument(metavar="MODEL_DIR", help="A saved mtl model directory (e.g. runs/x/last).")],
    ner: Annotated[Optional[str], typer.Option("--ner", help="Labelled NER file (CoNLL columns or JSONL).")] = None,
    qa: Annotated[Optional[str], typer.Option("--qa", help="Labelled QA file (SQuAD v1.1 JSON, CSV or JSONL).")] = None,
    cls: Annotated[Optional[str], typer.Option("--cls", help="Labelled classification file (CSV/TSV/JSONL).")] = None,
    suite: Annotated[bool, typer.Option("--suite", help="Run the seed's 5 NER + 5 QA validation cases.")] = False,
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Write predictions, metrics.json and plots here.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="NER: seqeval strict mode (IOB2) instead of conlleval's default.")] = False,
    show_errors: Annotated[int, typer.Option("--show-errors", metavar="N", help="Show the N examples with the most errors per task.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the metrics object as JSON on stdout.")] = False,
    device: Annotated[str, typer.Option(help="cpu, cuda[:N], mps or auto.")] = "cpu",
    precision: Annotated[str, typer.Option(help="fp32 (exact, default), bf16 or fp16 (GPU) autocast.")] = "fp32",
    batch_size: Annotated[int, typer.Option(help="Rows per forward pass (does not change any prediction).")] = 32,
    n_best: Annotated[int, typer.Option(help="QA: start/end candidates searched per window.")] = 20,
    max_answer_length: Annotated[Optional[int], typer.Option(help="QA: longest answer in tokens (default: the model's).")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Drop malformed records and say how many.")] = False,
) -> None:
    """Score a model with the standard metrics (seqeval, official SQuAD v1.1 EM/F1, sklearn)."""
    from ..errors import InputError
    from ..evaluate_run import check_request, evaluate_model

    if show_errors < 0:
        raise InputError("--show-errors must be 0 or more")
    files = {task: path for task, path in (("ner", ner), ("qa", qa), ("cls", cls)) if path}
    check_request(model_dir, files, suite)  # before torch loads: a wrong task answers at once

    with console.status("loading the model") as status:
        def on_event(kind: str, data: dict) -> None:
            if kind == "loaded":
                status.update(f"evaluating on {data['device']} ({data['precision']})")
            elif kind == "task":
                what = "validation suite" if data["task"] == "suite" else f"{TASK_NAMES[data['task']]}: {data['examples']} examples"
                status.update(f"evaluating {what}")
            elif kind == "writing":
                status.update(f"writing {data['out_dir']}")

        report = evaluate_model(model_dir, files, out_dir=out, strict=strict, device=device, precision=precision,
                                batch_size=batch_size, n_best=n_best, max_answer_length=max_answer_length,
                                worst=show_errors, suite=suite, skip_bad=skip_bad, on_event=on_event)

    render_report(report)
    if json_output:
        print_json(report.metrics)


evaluate_command.__doc__ += EXAMPLES


# --------------------------------------------------------------------------------------- rendering


def render_report(report) -> None:
    metrics = report.metrics
    for message in report.notes:
        note(message)
    tasks = [task for task in ("ner", "qa", "cls") if task in metrics]
    if tasks:
        console.print(summary_table(metrics, tasks))
    if "ner" in metrics:
        ner = metrics["ner"]
        mode = "strict mode (IOB2)" if ner["mode"] == "strict" else "default mode (conlleval)"
        console.print(scores_table(f"NER per entity type (%), seqeval {mode}", ner["per_type"], ner, "type"))
        console.print(confusion_table("NER token-level confusion of entity types (rows gold, columns predicted)",
                                      ner["confusion"]["labels"], ner["confusion"]["matrix"]))
    if "cls" in metrics:
        cls = metrics["cls"]
        console.print(scores_table("classification per class (%)", cls["per_class"], cls, "class"))
        console.print(confusion_table("classification confusion (rows gold, columns predicted)",
                                      cls["confusion"]["labels"], cls["confusion"]["matrix"]))
    for task, rows in report.worst.items():
        render_errors(task, rows)
    if report.suite is not None:
        render_suite(report.suite, metrics["suite"]["summary"])
    if report.written:
        console.print("wrote " + ", ".join(escape(str(path)) for path in report.written), highlight=False)


def summary_table(metrics: dict, tasks: list[str]) -> Table:
    table = Table(title=f"evaluation of {escape(metrics['model'])}", title_justify="left")
    for column in ("task", "file", "examples", "metric", "value (%)"):
        table.add_column(column, justify="right" if column in ("examples", "value (%)") else "left")
    for task in tasks:
        scores = metrics[task]
        rows = SUMMARY_ROWS[task]
        for i, (label, key) in enumerate(rows):
            first = i == 0
            table.add_row(TASK_NAMES[task] if first else "", escape(scores["file"]) if first else "",
                          str(scores["examples"]) if first else "", label, percent(scores[key], task))
        table.add_section()
    return table


def percent(value: float, task: str) -> str:
    """Every score as a percentage with two decimals (SQuAD EM/F1 already are percentages)."""
    return f"{value if task == 'qa' else value * 100:.2f}"


SUMMARY_ROWS = {
    "ner": [("entity precision (micro)", "precision"), ("entity recall (micro)", "recall"), ("entity F1 (micro)", "f1"),
            ("entity F1 (macro)", "macro_f1"), ("token accuracy", "token_accuracy")],
    "qa": [("exact match", "exact_match"), ("F1", "f1")],
    "cls": [("accuracy", "accuracy"), ("macro precision", "macro_precision"), ("macro recall", "macro_recall"),
            ("macro F1", "macro_f1")],
}


def scores_table(title: str, per_label: dict, totals: dict, what: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(what)
    for column in ("precision", "recall", "F1", "support"):
        table.add_column(column, justify="right")
    for label, row in per_label.items():
        table.add_row(escape(label), fmt(row["precision"], True), fmt(row["recall"], True), fmt(row["f1"], True),
                      str(row["support"]))
    table.add_section()
    if "precision" in totals:  # NER: micro over entities
        table.add_row("micro avg", fmt(totals["precision"], True), fmt(totals["recall"], True), fmt(totals["f1"], True),
                      str(sum(row["support"] for row in per_label.values())), style="bold")
    table.add_row("macro avg", fmt(totals["macro_precision"], True), fmt(totals["macro_recall"], True),
                  fmt(totals["macro_f1"], True), str(sum(row["support"] for row in per_label.values())), style="bold")
    return table


def render_errors(task: str, rows: list[dict]) -> None:
    if not rows:
        console.print(f"{TASK_NAMES[task]}: no errors to show")
        return
    console.rule(f"{TASK_NAMES[task]}: {len(rows)} example(s) with the most errors")
    for row in rows:
        if task == "ner":
            console.print(f"[bold]{escape(row['id'])}[/]: {row['entity_errors']} entity error(s), "
                          f"{row['tag_errors']} wrong tag(s)", highlight=False)
            console.print("  gold ", tagged_text(row["tokens"], row["gold"]))
            console.print("  pred ", tagged_text(row["tokens"], row["pred"]))
        elif task == "qa":
            console.print(f"[bold]{escape(row['id'])}[/]: {escape(row['question'])}  (F1 {row['f1']:.1f})", highlight=False)
            console.print(f"  gold [green]{escape(' | '.join(row['gold']))}[/]", highlight=False)
            console.print(f"  pred [red]{escape(row['pred']) or '(no answer)'}[/]  (p={row['score']:.2f})", highlight=False)
        else:
            console.print(f"[bold]{escape(row['id'])}[/]: {escape(row['text'][:200])}", highlight=False)
            console.print(f"  gold [green]{escape(row['gold'])}[/]  pred [red]{escape(row['pred'])}[/] "
                          f"(p={row['probability']:.2f})", highlight=False)


def render_suite(cases, summary: dict) -> None:
    """One table per task: ✅ exact, ⚠️ partial, ❌ miss (contexts are in metrics.json, not repeated here)."""
    for task in ("ner", "qa"):
        rows = [case for case in cases if case.task == task]
        if not rows:
            continue
        table = Table(title=f"validation suite: {TASK_NAMES[task]} (the seed's cases)", title_justify="left")
        for column in ("", "case", "sentence" if task == "ner" else "question", "expected", "predicted", "detail"):
            table.add_column(column)
        for case in rows:
            if task == "ner":
                shown = case.text
                expected = ", ".join(f"{t} ({k})" for t, k in case.expected)
                predicted = ", ".join(f"{t} ({k})" for t, k in case.predicted) or "(none)"
            else:
                shown, expected, predicted = case.question, case.expected[0], case.predicted[0] or "(no answer)"
            table.add_row(STATUS_SYMBOLS[case.status], escape(case.name), escape(shown), escape(expected),
                          escape(predicted), escape(case.detail))
        console.print(table)
        counts = summary[task]
        console.print(f"{TASK_NAMES[task]}: {counts['pass']}/{counts['cases']} exact ✅, {counts['partial']} partial ⚠️ , "
                      f"{counts['fail']} missed ❌", highlight=False)
