"""`mtl benchmark`: resolve the options into one config, run the benchmark engine, render its results."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ..render import console, escape, new_table, note, print_json, stderr_console
from .common import add_examples, data_overrides, handle_errors
from .options import (
    BatchSizeOption,
    ClsTrainOption,
    ClsValidOption,
    JsonOption,
    NerTrainOption,
    NerValidOption,
    PrecisionOption,
    PresetOption,
    QaTrainOption,
    QaValidOption,
    SetOption,
    TrainDeviceOption,
)

EXAMPLES = """
Examples:

  mtl benchmark --quick                       # a sub-minute smoke test

  mtl benchmark --random-init --preset cpu -b distilbert -b bert -b minilm

  mtl benchmark -b minilm --compare single-task --preset quick --out results/

  mtl benchmark -b ./my-encoder --accuracy --json > bench.json

  mtl benchmark --random-init -b roberta -b bert-large --plot speed.png
"""


def _command_line() -> str:
    """The command as typed (kept with the results), from `benchmark` on."""
    argv = sys.argv
    return "mtl " + shlex.join(argv[argv.index("benchmark") :]) if "benchmark" in argv else ""


def _tasks(value: str | None) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()] if value else []


@handle_errors
def benchmark_command(
    backbone: Annotated[
        list[str],
        typer.Option(
            "--backbone",
            "-b",
            help="Backbone to measure (repeat for several): local directory, alias or Hub id. Default: the preset's.",
        ),
    ] = [],
    preset: PresetOption = [],
    set_: SetOption = [],
    tasks: Annotated[
        str | None,
        typer.Option(
            help="Comma list of tasks, e.g. ner,qa (default: the tasks given data, else ner,qa on the bundled demo data)."
        ),
    ] = None,
    ner_train: NerTrainOption = None,
    ner_valid: NerValidOption = None,
    qa_train: QaTrainOption = None,
    qa_valid: QaValidOption = None,
    cls_train: ClsTrainOption = None,
    cls_valid: ClsValidOption = None,
    random_init: Annotated[
        bool,
        typer.Option(
            "--random-init",
            help="Build each backbone from its config, random weights: speed only, works offline (shipped configs for distilbert/bert/roberta/bert-large).",
        ),
    ] = False,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            help="With --random-init: the one tokenizer for every backbone (default: minilm, BERT's uncased WordPiece)."
        ),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Short sequences, few steps, a tiny training budget: a sub-minute smoke test."),
    ] = False,
    accuracy: Annotated[
        bool,
        typer.Option(
            "--accuracy", help="Also train each backbone on the config's budget and report validation metrics."
        ),
    ] = False,
    compare: Annotated[
        str | None, typer.Option(help="single-task: the joint model against one model per task, same budget.")
    ] = None,
    warmup: Annotated[
        int | None, typer.Option(help="Untimed training steps per task first (default 2; --quick 1).")
    ] = None,
    repeats: Annotated[
        int | None, typer.Option(help="Timed repeats; figures are their median (default 5; --quick 3).")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Training steps per repeat (default 3; --quick 2).")] = None,
    infer_examples: Annotated[
        int | None, typer.Option(help="Inputs per task timed at each inference batch size (default 64; --quick 16).")
    ] = None,
    batch_size: BatchSizeOption = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs of the --accuracy / --compare training runs.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default: the preset's).")] = None,
    device: TrainDeviceOption = None,
    precision: PrecisionOption = None,
    json_output: JsonOption = False,
    csv_output: Annotated[bool, typer.Option("--csv", help="Print one CSV row per measured model on stdout.")] = False,
    out: Annotated[
        str | None,
        typer.Option(
            "--out", "-o", help="Write benchmark.json, benchmark.csv and benchmark.md (tables for a README) here."
        ),
    ] = None,
    plot: Annotated[str | None, typer.Option("--plot", help="Write a PNG bar chart of the results here.")] = None,
) -> None:
    """Compare backbones on the same inputs: parameters, training and inference speed, memory, accuracy.

    Inference is timed at batch size 1 and at --batch-size.
    """
    from ..config import resolve

    if json_output and csv_output:
        raise InputError("--json and --csv both write to stdout: choose one (or use --out DIR for files)")
    if plot and not plot.lower().endswith(".png"):
        raise InputError(f"--plot writes a PNG: give a path ending in .png, got '{plot}'")
    for name, value, least in (
        ("warmup", warmup, 0),
        ("repeats", repeats, 1),
        ("steps", steps, 1),
        ("infer-examples", infer_examples, 1),
    ):
        if value is not None and value < least:
            raise InputError(f"--{name} must be at least {least}, got {value}")
    config = resolve(
        preset,
        set_,
        data_overrides(
            None,
            ner_train,
            ner_valid,
            qa_train,
            qa_valid,
            cls_train,
            cls_valid,
            batch_size=batch_size,
            epochs=epochs,
            lr=lr,
            device=device,
            precision=precision,
        ),
    )
    from ..benchmark import COMPARE_MODES, BenchmarkOptions, csv_rows, run_benchmark
    from ..benchmark.chart import chart_png
    from ..benchmark.report import markdown, to_csv
    from ..fileio import write_atomic

    if compare and compare not in COMPARE_MODES:
        raise InputError(f"--compare must be one of {', '.join(COMPARE_MODES)}, got '{compare}'")
    options = BenchmarkOptions(
        backbones=list(backbone),
        tasks=_tasks(tasks),
        random_init=random_init,
        tokenizer=tokenizer or "",
        quick=quick,
        warmup=warmup,
        repeats=repeats,
        steps=steps,
        infer_examples=infer_examples,
        accuracy=accuracy,
        compare=compare or "",
        command=_command_line(),
    )
    with BenchmarkView() as view:
        result = run_benchmark(config, options, view.on_event)
    render(result)
    if out:
        directory = Path(out)
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(directory / "benchmark.json", json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        write_atomic(directory / "benchmark.csv", to_csv(csv_rows(result)))
        write_atomic(directory / "benchmark.md", markdown(result))
        console.print(f"wrote {directory}/benchmark.json, benchmark.csv, benchmark.md")
    if plot:
        Path(plot).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(plot, chart_png(result))
        console.print(f"wrote {plot}")
    if json_output:
        print_json(result)
    elif csv_output:
        sys.stdout.write(to_csv(csv_rows(result)))
        sys.stdout.flush()


add_examples(benchmark_command, EXAMPLES)


class BenchmarkView:
    """One progress bar per phase (building, training steps, inference inputs, training runs)."""

    def __init__(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr_console(),
            transient=False,
        )
        self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._finish_bar()
        if self.progress.live.is_started:
            self.progress.stop()

    def on_event(self, kind: str, data: dict) -> None:
        if kind == "note":
            note(data["message"])
        elif kind == "machine":
            from ..benchmark.report import machine_line

            console.print(f"machine: {machine_line({'machine': data})}", highlight=False)
        elif kind == "phase":
            self._finish_bar()
            if not console.is_terminal:  # a log file: one line per phase, no live display
                console.print(data["label"], highlight=False)
                return
            if not self.progress.live.is_started:
                self.progress.start()
            self.bar = self.progress.add_task(data["label"], total=data["total"])
        elif kind == "advance" and self.bar is not None:
            self.progress.update(self.bar, completed=data["completed"])

    def _finish_bar(self) -> None:
        if self.bar is not None:
            task = self.progress.tasks[-1]
            if task.total is None:
                self.progress.update(self.bar, total=1, completed=1)
            self.bar = None


def render(result: dict) -> None:
    from ..benchmark.report import fmt, machine_line, tables

    console.print(f"\n[bold]machine[/]: {machine_line(result)}", highlight=False)
    for table in tables(result):
        best = table.best()
        rich_table = new_table(title=table.title, title_justify="left", caption=table.caption, caption_justify="left")
        cells = [[fmt(value, column.kind) for value, column in zip(row, table.columns)] for row in table.rows]
        needed = 1  # the width at which no heading needs to wrap
        for j, column in enumerate(table.columns):
            # names and figures are never cut: the headings wrap instead
            width = max([len(row[j]) for row in cells] + [max(map(len, column.name.split()))])
            rich_table.add_column(column.name, justify="left" if column.kind == "text" else "right", min_width=width)
            needed += max(width, len(column.name)) + 3
        for i, row in enumerate(cells):
            rich_table.add_row(
                *[f"[bold green]{escape(cell)}[/]" if (i, j) in best else escape(cell) for j, cell in enumerate(row)],
                end_section=i + 1 < len(table.rows) and table.groups[i] != table.groups[i + 1],
            )
        if console.is_terminal or console.width >= needed:
            console.print(rich_table)
            continue
        width = console.width  # a log file gets the table at the width it needs: no figure is ever cut
        console.width = needed
        try:
            console.print(rich_table)
        finally:
            console.width = width
