"""`mtl export`: parse options, call the export engine, say what was written."""

from __future__ import annotations

from typing import Annotated

import typer

from ..render import console, note
from .common import handle_errors

EXAMPLES = """
Examples:

  mtl export runs/demo/best-ner --format hf --task ner -o exports/ner

  mtl export runs/demo/last --format hf --task all -o exports/demo     # one directory per task

The Hugging Face directory loads with AutoModelForTokenClassification / AutoModelForQuestionAnswering
.from_pretrained(OUT) and pipelines; it holds the tokenizer and a model card (README.md).
"""


@handle_errors
def export_command(
    model_dir: Annotated[str, typer.Argument(metavar="MODEL_DIR", help="A saved mtl model directory (e.g. runs/x/last).")],
    out: Annotated[str, typer.Option("--out", "-o", help="The export directory (must be new or empty).")],
    fmt: Annotated[str, typer.Option("--format", help="hf: a Hugging Face model directory per task.")] = "hf",
    task: Annotated[str, typer.Option(help="ner, qa, cls, or all (one subdirectory per task).")] = "all",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing, non-empty export directory.")] = False,
) -> None:
    """Export a trained model in a standard format, with its tokenizer and a model card."""
    from ..export import export
    from ..export.hf import exportable
    from ..spec import read_spec

    with console.status(f"exporting {model_dir}"):
        written = export(model_dir, fmt, out, task, overwrite)
    if task == "all":
        spec = read_spec(model_dir)
        for left in spec.tasks:
            if exportable(spec, left):
                note(f"{left}: not exported: {exportable(spec, left)}")
    console.print("wrote " + ", ".join(str(path) for path in written), highlight=False)


export_command.__doc__ += EXAMPLES
