"""What every command shares: turning errors into exit codes, and the flags that build a TrainConfig.

The shared option declarations are in mtlcli.cli.options."""

from __future__ import annotations

import functools
import os

import typer

from ..errors import InputError, TrainingInterrupted, WorkError
from ..render import console, error, problems_table


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
