"""What every command shares: turning errors into exit codes, and the flags that build a TrainConfig.

The shared option declarations are in mtlcli.cli.options."""

from __future__ import annotations

import functools
import os

import typer

from ..errors import InputError, TrainingInterrupted, WorkError
from ..render import console, error, problems_table

EXAMPLE_COMMANDS = ("mtl", "cat", "echo", "curl")


def add_examples(command, text: str) -> None:
    """Append a command's examples to its help. Click rewraps paragraphs; one after a \\b line it keeps as
    written, so the example command lines stay one per line and the prose around them wraps."""
    paragraphs = text.strip("\n").split("\n\n")
    kept = [
        "\b\n" + (p if p.startswith(" ") else "  " + p.replace("\n", "\n  "))
        if p.split(maxsplit=1)[0] in EXAMPLE_COMMANDS
        else p
        for p in paragraphs
    ]
    command.__doc__ += "\n\n" + "\n\n".join(kept)


def debug_enabled() -> bool:
    return os.environ.get("MTL_DEBUG", "") not in ("", "0")


def handle_errors(command):
    """User errors → one line on stderr (+ a table when there are several) and exit 2; failures of the
    work (a full disk) → 1; Ctrl-C → 130."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except InputError as err:
            if debug_enabled():
                raise
            error(str(err))
            if len(err.problems) > 1:
                console.print(problems_table(err.problems))
            raise typer.Exit(2) from None
        except WorkError as err:
            if debug_enabled():
                raise
            error(str(err))
            raise typer.Exit(1) from None
        except TrainingInterrupted as err:
            error(str(err))
            raise typer.Exit(130) from None
        except KeyboardInterrupt:
            error("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def data_overrides(backbone, ner_train, ner_valid, qa_train, qa_valid, cls_train, cls_valid, **more) -> dict:
    """Explicit flags, by config key; None means 'not given' so presets and --set keep their value."""
    return dict(
        backbone=backbone,
        ner_train=ner_train,
        ner_valid=ner_valid,
        qa_train=qa_train,
        qa_valid=qa_valid,
        cls_train=cls_train,
        cls_valid=cls_valid,
        **more,
    )
