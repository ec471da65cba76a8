"""`mtl predict-qa`: answers to questions about a context, with character offsets into the context."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import InputError
from ..inference.predictor import DEFAULT_BATCH
from ..render import console
from . import predict
from .common import add_examples, handle_errors
from .options import (
    DeviceOption,
    InferenceBatchOption,
    JsonFormatOption,
    JsonlFormatOption,
    MaxAnswerLengthOption,
    ModelArgument,
    NullThresholdOption,
    PrecisionOption,
    QuantizeOption,
    SkipBadOption,
    format_option,
)

QaFormatOption = format_option("qa")

EXAMPLES = """
Examples:

mtl predict-qa runs/demo/last --context article.txt --question "Who founded Apple?" --question "When?"

echo "Apple was founded by Steve Jobs." | mtl predict-qa runs/demo/last --context - -q "Who founded Apple?"

mtl predict-qa runs/demo/last < questions.jsonl     # lines {"id"?, "context", "question"}

mtl predict-qa runs/demo/last            # on a terminal: a context, then questions about it; Ctrl-D quits

Output per question: {"id"?, "question", "answer", "start", "end", "score"} with context[start:end] == answer,
and with --n-best K also "n_best": the K best answers. Contexts of any length are read in overlapping windows.
A model trained with unanswerable questions (SQuAD 2.0) answers "" (start = end = 0) with that answer's score
when the question's no-answer score wins (see --null-threshold).
"""


@handle_errors
def predict_qa_command(
    model: ModelArgument,
    context: Annotated[
        str | None, typer.Option("--context", "-c", help="File holding the context ('-': stdin).", show_default=False)
    ] = None,
    question: Annotated[
        list[str] | None,
        typer.Option("--question", "-q", help="A question about the context (repeatable).", show_default=False),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            "-f",
            help='JSONL file of {"id"?, "context", "question"} (\'-\': stdin, the default without --context).',
            show_default=False,
        ),
    ] = None,
    n_best: Annotated[int, typer.Option("--n-best", min=1, help="Give the K best answers.")] = 1,
    max_answer_length: MaxAnswerLengthOption = None,
    null_threshold: NullThresholdOption = None,
    fmt: QaFormatOption = "auto",
    as_json: JsonFormatOption = False,
    as_jsonl: JsonlFormatOption = False,
    batch_size: InferenceBatchOption = DEFAULT_BATCH["qa"],
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    quantize: QuantizeOption = False,
    skip_bad: SkipBadOption = False,
) -> None:
    """Answer questions about a context: the answer, its character offsets in the context, and its score."""
    from ..inputs import check_text

    output = predict.choose_format(fmt, as_json, as_jsonl)
    questions = question or []
    if questions and context is None:
        raise InputError("--question needs --context (or give JSONL records with --file or on stdin)")
    if context is not None and file is not None:
        raise InputError("give --context with --question, or --file with JSONL records, not both")
    for q in questions:
        check_text("question", q)
    predict.check_model(model, "qa")
    items, fixed_context = gather_questions(context, questions, file, skip_bad)
    predictor = predict.load(model, "qa", device, precision, quantize, batch_size)
    predict.predict_and_show(
        "qa",
        predictor,
        qa_prompts(fixed_context) if items is None else items,
        output,
        predict={"n_best": n_best, "max_answer_length": max_answer_length, "null_threshold": null_threshold},
        record={"n_best": n_best},
    )


add_examples(predict_qa_command, EXAMPLES)


def gather_questions(context: str | None, questions: list[str], file: str | None, skip_bad: bool):
    """(QaItems, the --context text): items None when the prompt should take over."""
    from ..inputs import QaItem, check_text, read_qa_records, read_source, read_texts

    if context is None:
        if file is None and predict.stdin_is_terminal():
            return None, None
        items, skipped = read_qa_records(file or "-", skip_bad)
        predict.note_skipped(skipped)
        return items, None
    name, text = read_source(context)
    check_text("context", text, name)
    if questions:
        return [QaItem(q, text) for q in questions], text
    if context == "-":
        raise InputError("with --context -, the context comes from stdin: give the questions with --question")
    if predict.stdin_is_terminal():
        return None, text
    return [QaItem(t.text, text) for t in read_texts("-") if t.text.strip()], text  # questions, one per line


def qa_prompts(fixed_context: str | None):
    """QaItems typed at the prompt until Ctrl-D: a context (unless --context gave it), then questions about it.
    Without --context, an empty question asks for a new context."""
    if fixed_context is None:
        console.print(
            "Paste a context (one line), then ask questions about it; an empty question asks for a new "
            "context; Ctrl-D quits."
        )
    else:
        console.print("Ask questions about the context; Ctrl-D quits.")
    return _qa_items(fixed_context)


def _qa_items(fixed_context: str | None):
    from ..inputs import QaItem

    while True:
        context = fixed_context
        while context is None:
            context = predict.prompt("context")
            if context is None:
                return
            context = context if context.strip() else None
        while True:
            question = predict.prompt("question")
            if question is None:
                return
            if not question.strip():
                if fixed_context is None:
                    break
                continue
            yield QaItem(question, context)
