"""Everything the user sees: Rich on stderr for people, clean JSON on stdout for pipelines."""

from __future__ import annotations

import functools
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table


@functools.cache
def stderr_console():
    from rich.console import Console

    return Console(stderr=True)  # Rich turns colours off when stderr is no TTY or NO_COLOR is set


class _Console:
    """Rich's Console on stderr, made on first use: `mtl --help` and usage errors do not import Rich. What needs
    the Console object itself (a Progress display) takes stderr_console()."""

    def __getattr__(self, name: str):
        return getattr(stderr_console(), name)


console = _Console()


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def new_table(**options) -> Table:
    from rich.table import Table

    return Table(**options)


def title(task: str) -> str:
    """A task's name in sentences and tables ("NER", "QA", "classification")."""
    from . import tasks

    return tasks.get(task).title


def error(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def note(message: str) -> None:
    console.print(f"note: {escape(message)}", highlight=False)


def problems_table(problems) -> Table:
    table = new_table(title=f"{len(problems)} problems", title_justify="left")
    table.add_column("file")
    table.add_column("line / path")
    table.add_column("what is wrong")
    for problem in problems:
        table.add_row(problem.file, problem.where, problem.what)
    return table


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fmt(value, percent: bool = False) -> str:
    if isinstance(value, float):
        return f"{value * 100:.2f}" if percent else f"{value:.4f}"
    return str(value)


def metrics_table(heading: str, valid: dict, best: dict | None = None) -> Table:
    """One row per metric of each task (mtlcli.tasks); `best` (per task, its primary metric) goes beside that
    metric."""
    from . import tasks

    table = new_table(title=heading, title_justify="left")
    table.add_column("task")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("best so far", justify="right")
    for name, scores in valid.items():
        task = tasks.get(name)
        for i, metric in enumerate(m for m in task.metrics if m.key in scores):
            best_value = (best or {}).get(name) if metric.key == task.primary_metric else None
            table.add_row(
                task.title if i == 0 else "",
                metric.label,
                fmt(scores[metric.key], metric.fraction),
                fmt(best_value, metric.fraction) if best_value is not None else "",
            )
    return table


# entity colours: the usual types fixed, any other type a stable pick from the rest
ENTITY_COLORS = {"PER": "cyan", "ORG": "magenta", "LOC": "green", "MISC": "yellow"}
_MORE_COLORS = ["blue", "red", "bright_cyan", "bright_magenta", "bright_green", "bright_yellow", "bright_blue"]


def entity_color(kind: str) -> str:
    import zlib

    return ENTITY_COLORS.get(kind) or _MORE_COLORS[zlib.crc32(kind.encode()) % len(_MORE_COLORS)]


def tagged_text(tokens: list[str], tags: list[str]):
    """Words joined by spaces, each entity (IOB2 run of one type) coloured with its type as a subscript."""
    from rich.text import Text

    text = Text()
    i = 0
    while i < len(tokens):
        tag = tags[i]
        if tag == "O":
            text.append(tokens[i] + " ")
            i += 1
            continue
        kind = tag[2:]
        j = i + 1
        while j < len(tokens) and tags[j] == f"I-{kind}":
            j += 1
        text.append(" ".join(tokens[i:j]), style=f"bold {entity_color(kind)}")
        text.append(f"[{kind}] ", style=entity_color(kind))
        i = j
    text.rstrip()
    return text


def confusion_table(title: str, labels: list[str], matrix: list[list[int]], limit: int = 20) -> Table:
    """Rows gold, columns predicted; the diagonal (right) in bold green, confusions in red, zeros dimmed.
    Above `limit` labels only the `limit` most frequent gold labels are shown (the title says so)."""
    shown = list(range(len(labels)))
    if len(labels) > limit:
        shown = sorted(sorted(shown, key=lambda i: -sum(matrix[i]))[:limit])
        title += f" ({limit} most frequent of {len(labels)} labels)"
    table = new_table(title=title, title_justify="left")
    table.add_column("gold \\ pred", style="bold")
    for j in shown:
        table.add_column(escape(labels[j]), justify="right")
    for i in shown:
        cells = []
        for j in shown:
            count = matrix[i][j]
            style = "bold green" if i == j and count else "dim" if not count else "red"
            cells.append(f"[{style}]{count}[/]")
        table.add_row(escape(labels[i]), *cells)
    return table
