"""`mtl export`: parse options, call the export engine, say what was written."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import typer

from ..render import console, note
from .common import add_examples, handle_errors
from .options import ModelArgument

EXAMPLES = """
Examples:

  mtl export runs/demo/best-ner --format hf --task ner -o exports/ner

  mtl export runs/demo/last --format hf -o exports/demo              # one directory per task

  mtl export runs/demo/last --format onnx -o exports/demo-onnx       # then: mtl predict-ner exports/demo-onnx "..."

  mtl export runs/demo/last --format onnx --quantize int8 -o exports/demo-int8

hf: loads with AutoModelForTokenClassification / AutoModelForQuestionAnswering / AutoModelForSequenceClassification
.from_pretrained(OUT) and pipelines, with the tokenizer and a model card (README.md). onnx: one graph of the encoder
and every head, checked against PyTorch and optimized; mtl predict-* and mtl evaluate run it with onnxruntime.
"""


@handle_errors
def export_command(
    model_dir: ModelArgument,
    out: Annotated[str, typer.Option("--out", "-o", help="The export directory (must be new or empty).")],
    fmt: Annotated[
        Literal["hf", "onnx"],
        typer.Option(
            "--format", help="hf: a Hugging Face model directory per task; onnx: one ONNX graph of every head."
        ),
    ] = "hf",
    task: Annotated[str, typer.Option(help="hf: ner, qa, cls, or all (one subdirectory per task).")] = "all",
    quantize: Annotated[
        Optional[Literal["int8"]],
        typer.Option(help="onnx: dynamic int8 weights (faster, less exact).", show_default=False),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing, non-empty export directory.")] = False,
) -> None:
    """Export a trained model in a standard format, with its tokenizer and a model card."""
    from ..export import export
    from ..export.hf import exportable
    from ..spec import read_spec

    with console.status(f"exporting {model_dir}"):
        written, report = export(model_dir, fmt, out, task, overwrite, quantize)
    if fmt == "hf" and task == "all":
        spec = read_spec(model_dir)
        for left, reason in ((t, exportable(spec, t)) for t in spec.tasks):
            if reason:
                note(f"{left}: not exported: {reason}")
    if report:
        diffs = ", ".join(f"{name} {value:.1e}" for name, value in report["max_abs_diff"].items())
        fused = ", ".join(f"{op} {n}" for op, n in report["fused"].items() if n) or "none"
        console.print(f"checked against PyTorch on random shapes: max abs difference {diffs}", highlight=False)
        console.print(
            f"onnxruntime optimizer: {'applied' if report['optimized'] else 'not applied'}; fused: {fused}"
            + (f"; weights {report['quantized']}" if report["quantized"] else ""),
            highlight=False,
        )
    console.print("wrote " + ", ".join(str(path) for path in written), highlight=False)


add_examples(export_command, EXAMPLES)
