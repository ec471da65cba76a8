"""`mtl train`: resolve presets and options into one config, run the engine, render its events."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..render import console, metrics_table, new_table, note, print_json, stderr_console, title
from .common import add_examples, data_overrides, handle_errors
from .options import (
    BackboneOption,
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
    SkipBadOption,
    TrainDeviceOption,
)

EXAMPLES = """
Examples:

  mtl train --preset demo                                   # offline demo, a few minutes on a CPU

  mtl train --preset cpu --preset quick --backbone ./minilm \\
      --ner-train conll/train.txt --ner-valid conll/valid.txt \\
      --qa-train squad/train.json --qa-valid squad/dev.json

  mtl train --preset colab-t4 --set lr=3e-5 --set step_mode=joint --dry-run

  mtl train --preset quick --ner-train ... --qa-train ... --teacher ner=runs/ner/last --teacher qa=runs/qa/last

  mtl train --resume runs/demo                              # continue an interrupted run

  mtl train --preset demo --report-to tensorboard           # then: tensorboard --logdir runs/demo/tb
"""


@handle_errors
def train_command(
    preset: PresetOption = [],
    set_: SetOption = [],
    backbone: BackboneOption = None,
    ner_train: NerTrainOption = None,
    ner_valid: NerValidOption = None,
    qa_train: QaTrainOption = None,
    qa_valid: QaValidOption = None,
    cls_train: ClsTrainOption = None,
    cls_valid: ClsValidOption = None,
    epochs: Annotated[Optional[int], typer.Option()] = None,
    batch_size: BatchSizeOption = None,
    lr: Annotated[Optional[float], typer.Option()] = None,
    seed: Annotated[Optional[int], typer.Option()] = None,
    teacher: Annotated[
        list[str],
        typer.Option(
            metavar="TASK=DIR",
            help="Distil a single-task mtl model into the task (BAM!, teacher annealing), e.g. ner=runs/ner/last; "
            "repeatable.",
        ),
    ] = [],
    step_mode: Annotated[
        Optional[str], typer.Option(help="sampled (one task per step) or joint (every task per step).")
    ] = None,
    sampling: Annotated[
        Optional[str], typer.Option(help="round_robin, proportional, temperature:T or annealed.")
    ] = None,
    device: TrainDeviceOption = None,
    precision: PrecisionOption = None,
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", "-o")] = None,
    skip_bad: SkipBadOption = None,
    overwrite: Annotated[bool, typer.Option(help="Write into a non-empty output directory.")] = False,
    resume: Annotated[
        Optional[str], typer.Option(help="Continue an interrupted run directory from its last checkpoint.")
    ] = None,
    save_every: Annotated[Optional[int], typer.Option(help="Also save a resumable checkpoint every N steps.")] = None,
    report_to: Annotated[
        Optional[list[str]],
        typer.Option(
            "--report-to",
            help="Also log the step and epoch metrics to tensorboard (event files in the run's tb/) and/or mlflow "
            "(./mlruns, or MLFLOW_TRACKING_URI); repeatable; none: only metrics.jsonl (the default).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved configuration and stop.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Train one shared encoder on every task given data (NER, QA, classification)."""
    from ..backbones import OFFLINE_HINT, is_hub_id
    from ..config import resolve, to_toml

    if resume:
        from ..training.trainer import resume_config

        if preset or set_ or teacher or overwrite:
            raise InputError(
                "--resume continues a run with its own train_config.toml: give no --preset, --set, --teacher or "
                "--overwrite"
            )
        config = resume_config(resume)
    else:
        config = resolve(
            preset,
            set_,
            data_overrides(
                backbone,
                ner_train,
                ner_valid,
                qa_train,
                qa_valid,
                cls_train,
                cls_valid,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                seed=seed,
                step_mode=step_mode,
                sampling=sampling,
                device=device,
                precision=precision,
                output_dir=output_dir,
                skip_bad=skip_bad,
                save_every=save_every,
                report_to=",".join(report_to) if report_to else None,
                **teacher_keys(teacher),
            ),
        )
    if dry_run:
        if json_output:
            print_json(config.to_dict())
        else:
            typer.echo(to_toml(config), nl=False)
        if is_hub_id(config.backbone):
            note(f"backbone '{config.backbone}' comes from the Hugging Face Hub; offline, {OFFLINE_HINT}")
        return

    from ..training.trainer import train

    with TrainingView() as view:
        result = train(config, view.on_event, overwrite=overwrite, resume=bool(resume))
    if json_output and result.is_main:
        print_json(
            {
                "output_dir": str(result.output_dir),
                "best": result.best,
                "history": result.history,
                "weights_checksum_per_process": result.weights_checksum,
            }
        )


add_examples(train_command, EXAMPLES)


def teacher_keys(assignments: list[str]) -> dict[str, str]:
    """--teacher ner=DIR → {"ner_teacher": DIR}."""
    from .. import tasks

    keys = {}
    for assignment in assignments:
        task, sep, directory = assignment.partition("=")
        if not sep or not directory or task not in tasks.names():
            raise InputError(
                f"--teacher takes TASK=DIR with TASK one of {', '.join(tasks.names())}, got '{assignment}'"
            )
        keys[f"{task}_teacher"] = directory
    return keys


class TrainingView:
    """Live progress per epoch (per-task loss, lr, tokens/s, ETA) and a metrics table after each epoch."""

    def __init__(self):
        from rich.progress import (  # here, not at the top: `mtl --help` need not import it
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=stderr_console(),
            transient=False,
        )
        self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.progress.live.is_started:
            self.progress.stop()

    def on_event(self, kind: str, data: dict) -> None:
        getattr(self, f"_{kind}", lambda data: None)(data)

    def _data(self, data: dict) -> None:
        table = new_table(title="data", title_justify="left")
        for column in ("task", "train examples", "train features", "valid examples", "skipped"):
            table.add_column(column, justify="left" if column == "task" else "right")
        for task, row in data.items():
            table.add_row(
                title(task), str(row["train"]), str(row["train_features"]), str(row["valid"]), str(row["skipped"])
            )
        console.print(table)

    def _start(self, data: dict) -> None:
        params = data["parameters"]
        heads = ", ".join(f"{title(t)} {n:,}" for t, n in params.items() if t != "encoder")
        console.print(
            f"device {data['device']}, precision {data['precision']}, {data['processes']} process(es); "
            f"encoder {params['encoder']:,} parameters, heads: {heads}"
        )
        self.progress.start()  # only now: errors before this point stay a clean one-liner

    def _step(self, data: dict) -> None:
        if self.bar is None or self.progress.tasks[self.bar].fields["epoch"] != data["epoch"]:
            self.bar = self.progress.add_task("", total=data["steps"], epoch=data["epoch"], status="")
        losses = " ".join(f"{t} {v:.3f}" for t, v in data["loss"].items())
        weights = data["weights"]
        shown = (
            f" | weights {' '.join(f'{t} {w:.2f}' for t, w in weights.items())}"
            if any(w != 1.0 for w in weights.values())
            else ""
        )
        status = f"loss {losses}{shown} | lr {data['lr']:.2e} | {data['tokens_per_s']:,.0f} tok/s"
        self.progress.update(self.bar, completed=data["step"], status=status)
        # no live display in a log file: a plain line every tenth of an epoch instead
        if not console.is_terminal and data["step"] % max(1, data["steps"] // 10) == 0:
            console.print(
                f"epoch {data['epoch']} step {data['step']}/{data['steps']} | {status} | "
                f"{data['elapsed'] / 60:.1f} min",
                highlight=False,
                soft_wrap=True,
            )

    def _eval(self, data: dict) -> None:
        if data.get("valid"):
            minutes = data["wall_time_s"] / 60
            console.print(
                metrics_table(
                    f"validation after epoch {data['epoch']} ({minutes:.1f} min)", data["valid"], data["best"]
                )
            )
        if data["improved"]:
            console.print(f"saved best checkpoint for: {', '.join(title(t) for t in data['improved'])}")

    def _teacher(self, data: dict) -> None:
        source = "from the cache" if data["cached"] else "computed once, cached"
        console.print(
            f"{title(data['task'])} teacher {data['teacher']}: distributions over {data['features']:,} "
            f"training features ({source})",
            highlight=False,
        )

    def _warning(self, data: dict) -> None:
        note(data["message"])

    def _resumed(self, data: dict) -> None:
        console.print(f"resuming from {data['checkpoint']}: epoch {data['epoch']}, step {data['step']}")

    def _stopped(self, data: dict) -> None:
        console.print(f"early stopping after epoch {data['epoch']}: no task improved for {data['patience']} epoch(s)")

    def _end(self, data: dict) -> None:
        console.print(
            f"[bold green]done[/] in {data['wall_time_s'] / 60:.1f} min: model in {data['output_dir']}/last"
            + "".join(f", best {title(t)} in {data['output_dir']}/best-{t}" for t in data["best"])
        )
