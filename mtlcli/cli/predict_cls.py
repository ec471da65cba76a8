"""`mtl predict-cls`: the label of each text, with the probability of every label."""

from __future__ import annotations

from typing import Annotated

import typer

from ..inference.predictor import DEFAULT_BATCH_SIZE
from . import predict
from .common import add_examples, handle_errors
from .options import (
    DeviceOption,
    InferenceBatchOption,
    InputFormatOption,
    JsonFormatOption,
    JsonlFormatOption,
    ModelArgument,
    PrecisionOption,
    QuantizeOption,
    SkipBadOption,
    TextFileOption,
    TextsArgument,
    format_option,
)

ClsFormatOption = format_option("cls")

EXAMPLES = """
Examples:

mtl predict-cls runs/intents/last "I lost my card" "How do I top up?"

mtl predict-cls runs/intents/last --file messages.txt --top-k 3 > labels.jsonl

mtl predict-cls runs/nli/last --input-format jsonl --file pairs.jsonl   # lines {"text", "text_pair"}

Output per text: {"text", "label", "score", "probabilities": {label: p, ...}} (most likely first), with
"text_pair" for a pair.
"""


@handle_errors
def predict_cls_command(
    model: ModelArgument,
    texts: TextsArgument = None,
    file: TextFileOption = None,
    input_format: InputFormatOption = "text",
    top_k: Annotated[int, typer.Option("--top-k", min=0, help="Probabilities of the K likeliest labels (0: all).")] = 0,
    fmt: ClsFormatOption = "auto",
    as_json: JsonFormatOption = False,
    as_jsonl: JsonlFormatOption = False,
    batch_size: InferenceBatchOption = DEFAULT_BATCH_SIZE,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    quantize: QuantizeOption = False,
    skip_bad: SkipBadOption = False,
) -> None:
    """Classify texts: the label, its probability and the probability of every label."""
    output = predict.choose_format(fmt, as_json, as_jsonl)
    predict.check_model(model, "cls")
    items = predict.gather_texts(texts, file, input_format, skip_bad)
    predictor = predict.load(model, "cls", device, precision, quantize, batch_size)
    predict.predict_and_show(
        "cls", predictor, predict.text_prompts() if items is None else items, output, record={"top_k": top_k}
    )


add_examples(predict_cls_command, EXAMPLES)
