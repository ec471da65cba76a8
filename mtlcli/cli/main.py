"""`mtl`: the command-line entry point. Commands import the engine lazily so that --help answers at once."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from .. import __version__
from .benchmark import benchmark_command
from .evaluate import evaluate_command
from .export import export_command
from .predict_cls import predict_cls_command
from .predict_ner import predict_ner_command
from .predict_qa import predict_qa_command
from .prepare import prepare_command
from .serve import serve_command
from .train import train_command

app = typer.Typer(
    name="mtl",
    help="Multi-task fine-tuning of one shared transformer encoder: NER, extractive QA and text classification.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: Rich's help formatter takes 0.1 s to import, a third of --help
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mtl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    if debug:
        os.environ["MTL_DEBUG"] = "1"


app.command("prepare", short_help="Validate, tokenize and cache data; print a summary.")(prepare_command)
app.command("train", short_help="Train one shared encoder on NER, QA and/or classification.")(train_command)
app.command("evaluate", short_help="Score a model with the standard metrics; write predictions and reports.")(
    evaluate_command
)
app.command("predict-ner", short_help="Tag entities in text: colored on a terminal, JSON(L)/CoNLL for pipelines.")(
    predict_ner_command
)
app.command("predict-qa", short_help="Answer questions about a context, with exact character offsets.")(
    predict_qa_command
)
app.command("predict-cls", short_help="Classify texts, with label probabilities.")(predict_cls_command)
app.command("serve", short_help="Serve a model over HTTP with micro-batching, metrics and a web page.")(serve_command)
app.command("export", short_help="Export a model as a standard Hugging Face directory per task.")(export_command)
app.command("benchmark", short_help="Compare backbones: parameters, speed, memory, accuracy; joint vs single-task.")(
    benchmark_command
)
