"""The one error type for bad user input: it names the file, the line (or JSON path) and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    where: str  # a line number ("12") or a JSON path ("data[3].paragraphs[2].qas[5] (id 5733be28)"), or "" for the whole file
    what: str

    def __str__(self) -> str:
        location = f"{self.file}:{self.where}" if self.where else self.file
        return f"{location}: {self.what}"


class InputError(Exception):
    """Bad input or bad usage. The CLI turns it into a one-line message and exit code 2."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem("", "", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        first = str(self.problems[0]).lstrip(": ")
        more = len(self.problems) - 1
        super().__init__(first + (f" (and {more} more)" if more else ""))


class WorkError(Exception):
    """The work failed (not the user's input, e.g. a full disk): exit code 1."""


class TrainingInterrupted(Exception):
    """Ctrl-C during training: a resumable state was saved first (exit code 130)."""

    def __init__(self, run_dir, checkpoint):
        self.run_dir, self.checkpoint = run_dir, checkpoint
        super().__init__(f"interrupted; state saved in {checkpoint}; resume with: mtl train --resume {run_dir}")
