"""What `predict-ner`, `predict-qa` and `predict-cls` share: choosing the output format, gathering inputs, the
interactive prompt, checking and loading the model, predicting and showing (mtlcli.render_predictions).

Machine formats (json, jsonl, conll) go to stdout; on a terminal the default is a readable view, and with
no input at all the commands become an interactive prompt. torch and transformers load only once a
model is needed, so --help and bad usage answer at once.
"""

from __future__ import annotations

import sys

from ..errors import InputError
from ..render import console, note


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def choose_format(fmt: str, as_json: bool, as_jsonl: bool) -> str:
    """The one output format of --format, --json and --jsonl; auto: pretty on a terminal, else jsonl."""
    chosen = [name for name, flag in (("json", as_json), ("jsonl", as_jsonl)) if flag]
    if fmt != "auto":
        chosen.append(fmt)
    if len(set(chosen)) > 1:
        raise InputError(f"choose one output format, not {' and '.join(sorted(set(chosen)))}")
    if chosen:
        return chosen[0]
    return "pretty" if stdout_is_terminal() else "jsonl"


def stdout_console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)  # colours off when stdout is no TTY or NO_COLOR is set


def check_model(model: str, task: str) -> None:
    """The directory is an mtl model with this task's head: checked from config.json, before torch loads."""
    from ..inference.predictor import missing_task_message
    from ..spec import read_spec

    spec = read_spec(model)
    if task not in spec.tasks:
        raise InputError(f"{model}: {missing_task_message(task, spec.tasks)}")


def load(model: str, task: str, device: str, precision: str, quantize: bool, batch_size: int | None):
    from ..inference.predictor import Predictor

    with console.status(f"loading {model}"):
        predictor = Predictor(model, device=device, precision=precision, quantize=quantize, batch_size=batch_size)
    predictor.require(task)
    return predictor


def gather_texts(texts: list[str] | None, file: str | None, input_format: str, skip_bad: bool):
    """TextItems from arguments, --file or stdin; None when the prompt should take over."""
    from ..inputs import TextItem, read_text_records, read_texts

    if texts and file is not None:
        raise InputError("give texts as arguments or with --file, not both")
    if texts:
        return [TextItem(t) for t in texts]
    if file is None:
        if stdin_is_terminal():
            return None
        file = "-"
    if input_format == "jsonl":
        items, skipped = read_text_records(file, skip_bad)
        note_skipped(skipped)
        return items
    return read_texts(file)


def note_skipped(skipped: int) -> None:
    if skipped:
        note(f"skipped {skipped} malformed record(s)")


def prompt(label: str) -> str | None:
    """One line from the user; None at Ctrl-D."""
    try:
        return console.input(f"[bold]{label}>[/] ")
    except EOFError:
        console.print()
        return None


def text_prompts():
    """TextItems typed at the prompt until Ctrl-D. Blank lines are skipped: there is nothing to predict in them,
    and one pressed Enter too many should not print a prediction."""
    from ..inputs import TextItem

    console.print("Type a text and press Enter; Ctrl-D quits.")
    return (TextItem(line) for line in iter(lambda: prompt("text"), None) if line.strip())


def predict_and_show(
    task: str, predictor, items, output: str, predict: dict | None = None, record: dict | None = None
) -> None:
    """Predict `items` and show them in `output`. A list is predicted in one call (length-sorted batches); an
    iterator (the interactive prompt) item by item, each shown as soon as it is typed.

    `predict` are the task's prediction options, `record` its options of the records and views."""
    from ..render_predictions import header, render

    predict, record = predict or {}, record or {}
    out = stdout_console()
    top = header(task, output, predictor.spec.labels_of(task))
    if isinstance(items, list):
        results = predictor.predict(task, items, **predict)
        if top is not None:
            out.print(top)
        render(task, items, results, output, out, **record)
        return
    if top is not None:
        out.print(top)
    for item in items:
        render(task, [item], predictor.predict(task, [item], **predict), output, out, **record)
