"""The options several commands share, each declared once.

Typer has no option groups: each shared option is an `Annotated` alias, and a command takes it under the
parameter name that gives its flag (`ner_train: NerTrainOption = None` is --ner-train). Defaults stay
in the command signatures, where they differ: evaluate runs on the CPU in fp32 unless told, predict-*
picks the device and precision, train and benchmark leave both to the config (None: not given).

Nothing here imports torch: `--help` has to answer at once.
"""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from ..devices import PRECISIONS

# ------------------------------------------------------------------------ config (prepare, train, benchmark)
PresetOption = Annotated[
    list[str], typer.Option("--preset", "-p", help="Preset name or TOML path; repeat to compose left to right.")
]
SetOption = Annotated[list[str], typer.Option("--set", help="Override one config key: --set lr=3e-4 (repeatable).")]
BackboneOption = Annotated[
    str | None, typer.Option(help="Local model directory, alias (minilm, distilbert, bert, roberta) or Hub id.")
]
BatchSizeOption = Annotated[int | None, typer.Option(help="Examples per training step (default: the preset's).")]
TrainDeviceOption = Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")]

# ------------------------------------------------------------------------ data files
# the formats each reader takes (mtlcli.data.readers; mtlcli.data.hf_data for Hugging Face datasets)
DATASETS = "a save_to_disk directory, .parquet or .arrow"
NER_FILES = f"CoNLL columns, JSONL, or {DATASETS}"
QA_FILES = f"SQuAD v1.1 JSON, CSV, TSV, JSONL, or {DATASETS}"
CLS_FILES = f"CSV, TSV, JSONL (text or text pairs), or {DATASETS}"

NerTrainOption = Annotated[str | None, typer.Option(help=f"NER training data: {NER_FILES}.")]
NerValidOption = Annotated[str | None, typer.Option(help=f"NER validation data: {NER_FILES}.")]
QaTrainOption = Annotated[str | None, typer.Option(help=f"QA training data: {QA_FILES}.")]
QaValidOption = Annotated[str | None, typer.Option(help=f"QA validation data: {QA_FILES}.")]
ClsTrainOption = Annotated[str | None, typer.Option(help=f"Classification training data: {CLS_FILES}.")]
ClsValidOption = Annotated[str | None, typer.Option(help=f"Classification validation data: {CLS_FILES}.")]
# labelled files a saved model is scored on (evaluate)
NerFileOption = Annotated[str | None, typer.Option("--ner", help=f"Labelled NER file ({NER_FILES}).")]
QaFileOption = Annotated[str | None, typer.Option("--qa", help=f"Labelled QA file ({QA_FILES}).")]
ClsFileOption = Annotated[str | None, typer.Option("--cls", help=f"Labelled classification file ({CLS_FILES}).")]

SkipBadOption = Annotated[bool | None, typer.Option("--skip-bad", help="Drop malformed records and say how many.")]

# ------------------------------------------------------------------------ a saved model (evaluate, predict-*)
ModelArgument = Annotated[
    str,
    typer.Argument(
        metavar="MODEL_DIR", help="Model directory written by `mtl train`, e.g. runs/demo/last.", show_default=False
    ),
]
DeviceOption = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")]
InferenceBatchOption = Annotated[
    int,
    typer.Option(
        "--batch-size",
        min=1,
        help="Inputs per forward pass (QA: context windows), sorted by length. Never changes a result.",
    ),
]
MaxAnswerLengthOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="QA: longest answer in tokens (default: the model's, 30 unless set in training).",
        show_default=False,
    ),
]
NullThresholdOption = Annotated[
    float | None,
    typer.Option(
        help='QA: answer "" when the no-answer score beats the best span\'s by more than this (logits; default: 0 '
        "for a model trained with unanswerable questions, never for others). `mtl evaluate` on a file with "
        "unanswerable questions reports the best one.",
        show_default=False,
    ),
]

NerDecoding = Literal["argmax", "bio"]  # config.NER_DECODINGS
NER_DECODING_HELP = "NER: argmax per word, or bio (no I-X after O or another type); default: the model's."

# ------------------------------------------------------------------------ every command that runs a model
Precision = Literal[PRECISIONS]  # the one list of precisions (mtlcli.devices)
PrecisionOption = Annotated[
    Precision | None,
    typer.Option(
        help="auto: bf16 where the CPU/GPU has it, else fp16 on CUDA, else fp32; fp32: exact; bf16, fp16 (GPUs only): "
        "autocast."
    ),
]

# ------------------------------------------------------------------------ output
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]

# predict-*: --format takes the formats of the task (mtlcli.render_predictions), --json/--jsonl are shorthands
FORMAT_HELP = "auto: {pretty} on a terminal, jsonl otherwise."
JsonFormatOption = Annotated[bool, typer.Option("--json", help="Same as --format json: one JSON array on stdout.")]
JsonlFormatOption = Annotated[bool, typer.Option("--jsonl", help="Same as --format jsonl: one JSON object per input.")]


def format_option(task: str):
    """The --format option of `predict-{task}`: its choices are the formats the task can be shown in."""
    from ..render_predictions import formats, pretty_description

    choice = Literal[tuple(formats(task))]
    return Annotated[choice, typer.Option("--format", help=FORMAT_HELP.format(pretty=pretty_description(task)))]


# ------------------------------------------------------------------------ predict-* inputs
InputFormat = Literal["text", "jsonl"]
TextsArgument = Annotated[
    list[str] | None, typer.Argument(help="Texts to process; none: --file or stdin.", show_default=False)
]
TextFileOption = Annotated[
    str | None,
    typer.Option("--file", "-f", help="Read texts from this file, one per line ('-': stdin).", show_default=False),
]
InputFormatOption = Annotated[
    InputFormat,
    typer.Option(help='text: one text per line; jsonl: {"text", "id"?} objects (predict-cls: "text_pair"? too).'),
]
QuantizeOption = Annotated[
    bool,
    typer.Option(
        "--quantize",
        help="Dynamic int8 weights (CPU): faster than fp32, less "
        "accurate, and batching can move its scores; see "
        "benchmarks/results/predict_speed.md.",
    ),
]
