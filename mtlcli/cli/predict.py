"""`mtl predict-ner`, `predict-qa`, `predict-cls`: read inputs, call the engine (mtlcli.predict), render.

Machine formats (json, jsonl, conll) go to stdout; on a terminal the default is a readable view, and with
no input at all the commands become an interactive prompt. torch and transformers load only once a
model is needed, so --help and bad usage answer at once.
"""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..render import console, entity_color, note, print_json
from .common import handle_errors


class NerFormat(str, Enum):
    auto = "auto"
    pretty = "pretty"
    json = "json"
    jsonl = "jsonl"
    conll = "conll"
    table = "table"


class Format(str, Enum):
    auto = "auto"
    pretty = "pretty"
    json = "json"
    jsonl = "jsonl"
    table = "table"


class InputFormat(str, Enum):
    text = "text"
    jsonl = "jsonl"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


ModelArgument = Annotated[str, typer.Argument(help="Model directory written by `mtl train`, e.g. runs/demo/last.",
                                              show_default=False)]
TextsArgument = Annotated[Optional[list[str]], typer.Argument(help="Texts to process; none: --file or stdin.",
                                                              show_default=False)]
TextFileOption = Annotated[Optional[str], typer.Option("--file", "-f", help="Read texts from this file, one per line "
                                                       "('-': stdin).", show_default=False)]
InputFormatOption = Annotated[InputFormat, typer.Option(help="text: one text per line; jsonl: {\"text\", \"id\"?} "
                                                        "objects.")]
FormatHelp = "auto: {pretty} on a terminal, jsonl otherwise."
JsonOption = Annotated[bool, typer.Option("--json", help="Same as --format json: one JSON array on stdout.")]
JsonlOption = Annotated[bool, typer.Option("--jsonl", help="Same as --format jsonl: one JSON object per input.")]
BatchOption = Annotated[Optional[int], typer.Option(min=1, help="Inputs per forward pass, sorted by length (default "
                                                    "128; QA: 32 windows). Never changes a result.",
                                                    show_default=False)]
DeviceOption = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")]
PrecisionOption = Annotated[Precision, typer.Option(help="auto: bf16 autocast where the CPU/GPU has it, else fp32; "
                                                    "fp32: exact.")]
QuantizeOption = Annotated[bool, typer.Option("--quantize", help="Dynamic int8 weights (CPU): faster than fp32, less "
                                              "accurate, and batching can move its scores; see "
                                              "benchmarks/results/predict_speed.md.")]
SkipBadOption = Annotated[bool, typer.Option("--skip-bad", help="Drop malformed JSONL records and say how many.")]


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def choose_format(fmt: Enum, as_json: bool, as_jsonl: bool) -> str:
    chosen = [name for name, flag in (("json", as_json), ("jsonl", as_jsonl)) if flag]
    if fmt.value != "auto":
        chosen.append(fmt.value)
    if len(set(chosen)) > 1:
        raise InputError(f"choose one output format, not {' and '.join(sorted(set(chosen)))}")
    if chosen:
        return chosen[0]
    return "pretty" if stdout_is_terminal() else "jsonl"


def stdout_console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)  # colours off when stdout is no TTY or NO_COLOR is set


def check_model(model: str, task: str) -> None:
    """The directory is an mtl model with this task's head: checked from config.json, before torch loads."""
    from ..inference.predictor import missing_task_message
    from ..spec import read_spec

    spec = read_spec(model)
    if task not in spec.tasks:
        raise InputError(f"{model}: {missing_task_message(task, spec.tasks)}")


def load(model: str, device: str, precision: Precision, quantize: bool, batch_size: int | None, task: str):
    from ..inference.predictor import Predictor

    with console.status(f"loading {model}"):
        predictor = Predictor(model, device=device, precision=precision.value, quantize=quantize, batch_size=batch_size)
    predictor.require(task)
    return predictor


def gather_texts(texts: list[str] | None, file: str | None, input_format: InputFormat, skip_bad: bool):
    """TextItems from arguments, --file or stdin; None when the prompt should take over."""
    from ..inputs import TextItem, read_text_records, read_texts

    if texts and file is not None:
        raise InputError("give texts as arguments or with --file, not both")
    if texts:
        return [TextItem(t) for t in texts]
    if file is None:
        if stdin_is_terminal():
            return None
        file = "-"
    if input_format is InputFormat.jsonl:
        items, skipped = read_text_records(file, skip_bad)
        if skipped:
            note(f"skipped {skipped} malformed record(s)")
        return items
    return read_texts(file)


def prompt(label: str) -> str | None:
    """One line from the user; None at Ctrl-D."""
    try:
        return console.input(f"[bold]{label}>[/] ")
    except EOFError:
        console.print()
        return None


def with_id(item, obj: dict) -> dict:
    return ({"id": item.id} | obj) if getattr(item, "id", None) is not None else obj


# --- predict-ner ---------------------------------------------------------------------------------------------

NER_EXAMPLES = """
Examples:

mtl predict-ner runs/demo/last "Apple Inc. was founded by Steve Jobs in California."

mtl predict-ner runs/demo/last --file news.txt --format jsonl > entities.jsonl

cat news.txt | mtl predict-ner runs/demo/last --format conll

mtl predict-ner runs/demo/last            # on a terminal: type texts, Ctrl-D to quit

JSONL output, one object per input line: {"text", "entities": [{"text", "type", "start", "end", "score"}]}
with text\\[start:end] == entity text (character offsets into the input as given).
"""


@handle_errors
def predict_ner_command(
    model: ModelArgument,
    texts: TextsArgument = None,
    file: TextFileOption = None,
    input_format: InputFormatOption = InputFormat.text,
    pretokenized: Annotated[bool, typer.Option("--pretokenized", help="Texts are space-separated tokens: take "
                                               "them as they are, do not split punctuation.")] = False,
    fmt: Annotated[NerFormat, typer.Option("--format", help=FormatHelp.format(pretty="colored entities"))] = NerFormat.auto,
    as_json: JsonOption = False,
    as_jsonl: JsonlOption = False,
    batch_size: BatchOption = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = Precision.auto,
    quantize: QuantizeOption = False,
    skip_bad: SkipBadOption = False,
) -> None:
    """Tag entities in raw text: type, character offsets and score of each entity."""
    output = choose_format(fmt, as_json, as_jsonl)
    check_model(model, "ner")
    items = gather_texts(texts, file, input_format, skip_bad)
    predictor = load(model, device, precision, quantize, batch_size, "ner")
    out = stdout_console()
    if items is None:
        console.print("Type a text and press Enter; Ctrl-D quits.")
        if output == "pretty":
            out.print(legend(predictor.spec.labels_of("ner")))
        while (line := prompt("text")) is not None:
            if line.strip():
                render_ner([_text_item(line)], predictor.ner([line], pretokenized), output, out)
        return
    results = predictor.ner([item.text for item in items], pretokenized)
    if output == "pretty":
        out.print(legend(predictor.spec.labels_of("ner")))
    render_ner(items, results, output, out)


predict_ner_command.__doc__ += NER_EXAMPLES


def _text_item(text: str):
    from ..inputs import TextItem

    return TextItem(text)


def ner_object(item, result) -> dict:
    from .. import tasks

    return with_id(item, tasks.get("ner").record(item, result))


def render_ner(items, results, output: str, out) -> None:
    if output == "jsonl":
        for item, result in zip(items, results):
            print_json(ner_object(item, result))
    elif output == "json":
        print_json([ner_object(item, result) for item, result in zip(items, results)])
    elif output == "conll":
        lines = []
        for result in results:
            lines += [f"{result.text[s:e]}\t{tag}\n" for (s, e), tag in zip(result.words, result.tags)]
            lines.append("\n")
        sys.stdout.write("".join(lines))
        sys.stdout.flush()
    elif output == "table":
        out.print(ner_table(items, results))
    else:
        for result in results:
            out.print(tagged(result.text, result.entities))


def entity_types(labels: list[str]) -> list[str]:
    """The model's entity types, the CoNLL ones first in their usual order."""
    kinds = {label.partition("-")[2] for label in labels} - {""}
    usual = [k for k in ("PER", "ORG", "LOC", "MISC") if k in kinds]
    return usual + sorted(kinds - set(usual))


def legend(labels: list[str]):
    from rich.text import Text

    text = Text("entities: ", style="dim")
    for kind in entity_types(labels):
        text.append(f" {kind} ", style=f"bold {entity_color(kind)} reverse")
        text.append(" ")
    return text


def tagged(text: str, entities):
    """The text as given, each entity in its type's colour followed by its type."""
    from rich.text import Text

    shown, at = Text(), 0
    for entity in entities:
        shown.append(text[at:entity.start])
        shown.append(text[entity.start:entity.end], style=f"bold {entity_color(entity.type)}")
        shown.append(f"[{entity.type}]", style=f"dim {entity_color(entity.type)}")
        at = entity.end
    shown.append(text[at:])
    return shown


def ner_table(items, results):
    from rich.table import Table

    table = Table(title=f"{sum(len(r.entities) for r in results)} entities in {len(results)} texts",
                  title_justify="left")
    for column in ("#", "entity", "type", "start", "end", "score"):
        table.add_column(column, justify="right" if column in ("#", "start", "end", "score") else "left")
    for number, (item, result) in enumerate(zip(items, results), start=1):
        for e in result.entities:
            table.add_row(item.id or str(number), e.text, f"[{entity_color(e.type)}]{e.type}[/]", str(e.start),
                          str(e.end), f"{e.score:.3f}")
    return table


# --- predict-qa ----------------------------------------------------------------------------------------------

QA_EXAMPLES = """
Examples:

mtl predict-qa runs/demo/last --context article.txt --question "Who founded Apple?" --question "When?"

echo "Apple was founded by Steve Jobs." | mtl predict-qa runs/demo/last --context - -q "Who founded Apple?"

mtl predict-qa runs/demo/last < questions.jsonl     # lines {"id"?, "context", "question"}

mtl predict-qa runs/demo/last            # on a terminal: a context, then questions about it; Ctrl-D quits

Output per question: {"id"?, "question", "answer", "start", "end", "score"} with context\\[start:end] == answer,
and with --n-best K also "n_best": the K best answers. Contexts of any length are read in overlapping windows.
"""


@handle_errors
def predict_qa_command(
    model: ModelArgument,
    context: Annotated[Optional[str], typer.Option("--context", "-c", help="File holding the context ('-': stdin).",
                                                   show_default=False)] = None,
    question: Annotated[Optional[list[str]], typer.Option("--question", "-q", help="A question about the context "
                                                          "(repeatable).", show_default=False)] = None,
    file: Annotated[Optional[str], typer.Option("--file", "-f", help="JSONL file of {\"id\"?, \"context\", "
                                                "\"question\"} ('-': stdin, the default without --context).",
                                                show_default=False)] = None,
    n_best: Annotated[int, typer.Option("--n-best", min=1, help="Give the K best answers.")] = 1,
    max_answer_length: Annotated[Optional[int], typer.Option(min=1, help="Longest answer in tokens (default: the "
                                                             "model's, 30).", show_default=False)] = None,
    fmt: Annotated[Format, typer.Option("--format", help=FormatHelp.format(pretty="answers in context"))] = Format.auto,
    as_json: JsonOption = False,
    as_jsonl: JsonlOption = False,
    batch_size: BatchOption = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = Precision.auto,
    quantize: QuantizeOption = False,
    skip_bad: SkipBadOption = False,
) -> None:
    """Answer questions about a context: the answer, its character offsets in the context, and its score."""
    from ..inputs import QaItem, check_text, read_qa_records, read_source, read_texts

    output = choose_format(fmt, as_json, as_jsonl)
    questions = question or []
    if questions and context is None:
        raise InputError("--question needs --context (or give JSONL records with --file or on stdin)")
    if context is not None and file is not None:
        raise InputError("give --context with --question, or --file with JSONL records, not both")
    for q in questions:
        check_text("question", q)
    check_model(model, "qa")
    items, fixed_context = None, None
    if context is not None:
        name, fixed_context = read_source(context)
        check_text("context", fixed_context, name)
        if questions:
            items = [QaItem(q, fixed_context) for q in questions]
        elif context == "-":
            raise InputError("with --context -, the context comes from stdin: give the questions with --question")
        elif not stdin_is_terminal():  # questions, one per line, on stdin
            items = [QaItem(t.text, fixed_context) for t in read_texts("-") if t.text.strip()]
    elif file is not None or not stdin_is_terminal():
        items, skipped = read_qa_records(file or "-", skip_bad)
        if skipped:
            note(f"skipped {skipped} malformed record(s)")
    predictor = load(model, device, precision, quantize, batch_size, "qa")
    out = stdout_console()
    if items is None:
        interactive_qa(predictor, fixed_context, n_best, max_answer_length, output, out)
        return
    answers = predictor.qa([i.question for i in items], [i.context for i in items], n_best, max_answer_length)
    render_qa(items, answers, n_best, output, out)


predict_qa_command.__doc__ += QA_EXAMPLES


def interactive_qa(predictor, fixed_context, n_best, max_answer_length, output, out) -> None:
    from ..inputs import QaItem

    if fixed_context is None:
        console.print("Paste a context (one line), then ask questions about it; an empty question asks for a new "
                      "context; Ctrl-D quits.")
    else:
        console.print("Ask questions about the context; Ctrl-D quits.")
    while True:
        context = fixed_context
        while context is None:
            context = prompt("context")
            if context is None:
                return
            context = context if context.strip() else None
        while True:
            question = prompt("question")
            if question is None:
                return
            if not question.strip():
                if fixed_context is None:
                    break
                continue
            item = QaItem(question, context)
            render_qa([item], predictor.qa([question], [context], n_best, max_answer_length), n_best, output, out)


def qa_object(item, spans, n_best: int) -> dict:
    from .. import tasks

    return with_id(item, tasks.get("qa").record(item, spans, n_best=n_best))


def render_qa(items, answers, n_best: int, output: str, out) -> None:
    if output == "jsonl":
        for item, spans in zip(items, answers):
            print_json(qa_object(item, spans, n_best))
    elif output == "json":
        print_json([qa_object(item, spans, n_best) for item, spans in zip(items, answers)])
    elif output == "table":
        from rich.table import Table

        table = Table(title=f"{len(items)} questions", title_justify="left")
        for column in ("#", "question", "answer", "start", "end", "score"):
            table.add_column(column, justify="right" if column in ("#", "start", "end", "score") else "left")
        for number, (item, spans) in enumerate(zip(items, answers), start=1):
            for rank, span in enumerate(spans):
                table.add_row(item.id or str(number) if rank == 0 else "", item.question if rank == 0 else "",
                              span.text, str(span.start), str(span.end), f"{span.score:.3f}",
                              style=None if rank == 0 else "dim")
        out.print(table)
    else:
        for item, spans in zip(items, answers):
            out.print(answer_view(item, spans))


def answer_view(item, spans, width: int = 80):
    """The question, the best answer inside its stretch of context, and the other candidates."""
    from rich.text import Text

    best = spans[0]
    view = Text()
    view.append("Q: ", style="bold").append(item.question.strip() + "\n")
    if not best.text:
        view.append("A: ", style="bold").append("(no answer found)\n", style="dim")
        return view
    view.append("A: ", style="bold").append(best.text, style="bold green")
    view.append(f"  (score {best.score:.3f}, characters {best.start}–{best.end})\n", style="dim")
    context = item.context
    left, right = max(0, best.start - width), min(len(context), best.end + width)
    view.append("   " + ("…" if left else "") + context[left:best.start].replace("\n", " "), style="dim")
    view.append(context[best.start:best.end], style="bold green underline")
    view.append(context[best.end:right].replace("\n", " ") + ("…" if right < len(context) else ""), style="dim")
    view.append("\n")
    for rank, span in enumerate(spans[1:], start=2):
        view.append(f"   {rank}. {span.text}  ({span.score:.3f}, {span.start}–{span.end})\n", style="dim")
    return view


# --- predict-cls ---------------------------------------------------------------------------------------------

CLS_EXAMPLES = """
Examples:

mtl predict-cls runs/intents/last "I lost my card" "How do I top up?"

mtl predict-cls runs/intents/last --file messages.txt --top-k 3 > labels.jsonl

Output per text: {"text", "label", "score", "probabilities": {label: p, ...}} (most likely first).
"""


@handle_errors
def predict_cls_command(
    model: ModelArgument,
    texts: TextsArgument = None,
    file: TextFileOption = None,
    input_format: InputFormatOption = InputFormat.text,
    top_k: Annotated[int, typer.Option("--top-k", min=0, help="Probabilities of the K likeliest labels (0: all).")] = 0,
    fmt: Annotated[Format, typer.Option("--format", help=FormatHelp.format(pretty="labels and bars"))] = Format.auto,
    as_json: JsonOption = False,
    as_jsonl: JsonlOption = False,
    batch_size: BatchOption = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = Precision.auto,
    quantize: QuantizeOption = False,
    skip_bad: SkipBadOption = False,
) -> None:
    """Classify texts: the label, its probability and the probability of every label."""
    output = choose_format(fmt, as_json, as_jsonl)
    check_model(model, "cls")
    items = gather_texts(texts, file, input_format, skip_bad)
    predictor = load(model, device, precision, quantize, batch_size, "cls")
    out = stdout_console()
    if items is None:
        console.print("Type a text and press Enter; Ctrl-D quits.")
        while (line := prompt("text")) is not None:
            if line.strip():  # a blank line has nothing to classify (as predict-ner)
                render_cls([_text_item(line)], predictor.cls([line]), top_k, output, out)
        return
    render_cls(items, predictor.cls([item.text for item in items]), top_k, output, out)


predict_cls_command.__doc__ += CLS_EXAMPLES


def cls_object(item, probabilities: dict, top_k: int) -> dict:
    from .. import tasks

    return with_id(item, tasks.get("cls").record(item, probabilities, top_k=top_k))


def render_cls(items, results, top_k: int, output: str, out) -> None:
    if output == "jsonl":
        for item, probabilities in zip(items, results):
            print_json(cls_object(item, probabilities, top_k))
    elif output == "json":
        print_json([cls_object(item, probabilities, top_k) for item, probabilities in zip(items, results)])
    elif output == "table":
        from rich.table import Table

        table = Table(title=f"{len(items)} texts", title_justify="left")
        for column in ("#", "text", "label", "score", "next"):
            table.add_column(column, justify="right" if column in ("#", "score") else "left")
        for number, (item, probabilities) in enumerate(zip(items, results), start=1):
            ranked = list(probabilities.items())
            runner_up = f"{ranked[1][0]} ({ranked[1][1]:.3f})" if len(ranked) > 1 else ""
            table.add_row(item.id or str(number), item.text, ranked[0][0], f"{ranked[0][1]:.3f}", runner_up)
        out.print(table)
    else:
        from rich.text import Text

        for item, probabilities in zip(items, results):
            view = Text(item.text + "\n")
            for label, p in list(probabilities.items())[: top_k or 3]:
                bar = "█" * round(p * 20)
                view.append(f"   {label:<20} {p:6.1%} ", style="bold" if bar and p == max(probabilities.values()) else "")
                view.append(bar + "\n", style="cyan")
            out.print(view)
