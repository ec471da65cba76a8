"""`mtl predict-ner`: entities in raw text, with character offsets into the text as given."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import InputError
from ..inference.predictor import DEFAULT_BATCH_SIZE
from . import predict
from .common import add_examples, handle_errors
from .options import (
    NER_DECODING_HELP,
    DeviceOption,
    InferenceBatchOption,
    InputFormatOption,
    JsonFormatOption,
    JsonlFormatOption,
    ModelArgument,
    NerDecoding,
    PrecisionOption,
    QuantizeOption,
    SkipBadOption,
    TextFileOption,
    TextsArgument,
    format_option,
)

NerFormatOption = format_option("ner")

EXAMPLES = """
Examples:

mtl predict-ner runs/demo/last "Apple Inc. was founded by Steve Jobs in California."

mtl predict-ner runs/demo/last --file news.txt --format jsonl > entities.jsonl

cat news.txt | mtl predict-ner runs/demo/last --format conll

mtl predict-ner runs/flert/last --file article.txt --context-lines   # a model trained with ner_context=64

mtl predict-ner runs/demo/last            # on a terminal: type texts, Ctrl-D to quit

JSONL output, one object per input line: {"text", "entities": [{"text", "type", "start", "end", "score"}]}
with text[start:end] == entity text (character offsets into the input as given).
"""


@handle_errors
def predict_ner_command(
    model: ModelArgument,
    texts: TextsArgument = None,
    file: TextFileOption = None,
    input_format: InputFormatOption = "text",
    pretokenized: Annotated[
        bool,
        typer.Option(
            "--pretokenized", help="Texts are space-separated tokens: take them as they are, do not split punctuation."
        ),
    ] = False,
    context_lines: Annotated[
        bool,
        typer.Option(
            "--context-lines",
            help="Each line's neighbouring lines (up to a blank line) are its document context, as for a model "
            "trained with ner_context=N.",
        ),
    ] = False,
    decoding: Annotated[NerDecoding | None, typer.Option(help=NER_DECODING_HELP, show_default=False)] = None,
    fmt: NerFormatOption = "auto",
    as_json: JsonFormatOption = False,
    as_jsonl: JsonlFormatOption = False,
    batch_size: InferenceBatchOption = DEFAULT_BATCH_SIZE,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    quantize: QuantizeOption = False,
    skip_bad: SkipBadOption = False,
) -> None:
    """Tag entities in raw text: type, character offsets and score of each entity."""
    output = predict.choose_format(fmt, as_json, as_jsonl)
    predict.check_model(model, "ner")
    items = predict.gather_texts(texts, file, input_format, skip_bad)
    if context_lines and items is None:
        raise InputError("--context-lines reads the lines together: give them as arguments, with --file or on stdin")
    predictor = predict.load(model, "ner", device, precision, quantize, batch_size)
    predict.predict_and_show(
        "ner",
        predictor,
        predict.text_prompts() if items is None else items,
        output,
        predict={"pretokenized": pretokenized, "decoding": decoding, "context_lines": context_lines},
    )


add_examples(predict_ner_command, EXAMPLES)
