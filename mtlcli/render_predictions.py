"""How `predict-*` shows predictions: every output format of every task, in one place.

json and jsonl are the same for any task: one record per input, the task's own (mtlcli.tasks `record`) after
an optional "id". The other formats are views a task has: conll (NER), table, pretty. A view returns text
for stdout as it is (machine formats) or Rich renderables for the stdout console (formats for people).
Adding a format is one entry in GENERIC or VIEWS; the commands take their --format choices from `formats`.

Torch is never imported here: the --format choices are read when the CLI starts.
"""

from __future__ import annotations

import json
import sys

from .render import entity_color


def record(task: str, item, result, **options) -> dict:
    """The JSON object of one prediction: {"id"?} then the task's record."""
    from . import tasks

    obj = tasks.get(task).record(item, result, **options)
    return ({"id": item.id} | obj) if getattr(item, "id", None) is not None else obj


def _json_line(obj) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


def as_jsonl(task, items, results, options) -> str:
    return "".join(_json_line(record(task, item, result, **options)) for item, result in zip(items, results))


def as_json(task, items, results, options) -> str:
    return _json_line([record(task, item, result, **options) for item, result in zip(items, results)])


def _table(heading: str, columns: tuple[str, ...], right: tuple[str, ...]):
    from rich.table import Table

    table = Table(title=heading, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    return table


def _number(item, number: int) -> str:
    """What a table row calls its input: the input's id, else its place."""
    return item.id or str(number)


# --------------------------------------------------------------------------------------------- NER
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
        shown.append(text[at : entity.start])
        shown.append(text[entity.start : entity.end], style=f"bold {entity_color(entity.type)}")
        shown.append(f"[{entity.type}]", style=f"dim {entity_color(entity.type)}")
        at = entity.end
    shown.append(text[at:])
    return shown


def ner_pretty(task, items, results, options) -> list:
    return [tagged(result.text, result.entities) for result in results]


def ner_conll(task, items, results, options) -> str:
    """`word<TAB>tag` per word, a blank line after each text."""
    lines = []
    for result in results:
        lines += [f"{result.text[s:e]}\t{tag}\n" for (s, e), tag in zip(result.words, result.tags)]
        lines.append("\n")
    return "".join(lines)


def ner_table(task, items, results, options) -> list:
    table = _table(
        f"{sum(len(r.entities) for r in results)} entities in {len(results)} texts",
        ("#", "entity", "type", "start", "end", "score"),
        ("#", "start", "end", "score"),
    )
    for number, (item, result) in enumerate(zip(items, results), start=1):
        for e in result.entities:
            table.add_row(
                _number(item, number),
                e.text,
                f"[{entity_color(e.type)}]{e.type}[/]",
                str(e.start),
                str(e.end),
                f"{e.score:.3f}",
            )
    return [table]


# --------------------------------------------------------------------------------------------- QA
def answer_view(item, spans, width: int = 80):
    """The question, the best answer inside its stretch of context, and the other candidates."""
    from rich.text import Text

    best = spans[0]
    view = Text()
    view.append("Q: ", style="bold").append(item.question.strip() + "\n")
    if not best.text:  # no valid span, or the no-answer score won (a model trained with unanswerable questions)
        found = f"(no answer, score {best.score:.3f})" if best.score else "(no answer found)"
        view.append("A: ", style="bold").append(found + "\n", style="dim")
    else:
        view.append("A: ", style="bold").append(best.text, style="bold green")
        view.append(f"  (score {best.score:.3f}, characters {best.start}–{best.end})\n", style="dim")
        context = item.context
        left, right = max(0, best.start - width), min(len(context), best.end + width)
        view.append("   " + ("…" if left else "") + context[left : best.start].replace("\n", " "), style="dim")
        view.append(context[best.start : best.end], style="bold green underline")
        view.append(context[best.end : right].replace("\n", " ") + ("…" if right < len(context) else ""), style="dim")
        view.append("\n")
    for rank, span in enumerate(spans[1:], start=2):
        view.append(
            f"   {rank}. {span.text or '(no answer)'}  ({span.score:.3f}, {span.start}–{span.end})\n", style="dim"
        )
    return view


def qa_pretty(task, items, results, options) -> list:
    return [answer_view(item, spans) for item, spans in zip(items, results)]


def qa_table(task, items, results, options) -> list:
    """One row per answer: the best in full, the other n-best candidates dimmed below it."""
    table = _table(
        f"{len(items)} questions", ("#", "question", "answer", "start", "end", "score"), ("#", "start", "end", "score")
    )
    for number, (item, spans) in enumerate(zip(items, results), start=1):
        for rank, span in enumerate(spans):
            table.add_row(
                _number(item, number) if rank == 0 else "",
                item.question if rank == 0 else "",
                span.text,
                str(span.start),
                str(span.end),
                f"{span.score:.3f}",
                style=None if rank == 0 else "dim",
            )
    return [table]


# --------------------------------------------------------------------------------------------- classification
def cls_pretty(task, items, results, options) -> list:
    """Each text, then its likeliest labels (--top-k, else 3) with a bar of 20 blocks for 100%."""
    from rich.text import Text

    views = []
    for item, probabilities in zip(items, results):
        view = Text(item.text + "\n" + (f"   ↳ {item.text_pair}\n" if item.text_pair is not None else ""))
        for label, p in list(probabilities.items())[: options.get("top_k") or 3]:
            bar = "█" * round(p * 20)
            view.append(f"   {label:<20} {p:6.1%} ", style="bold" if bar and p == max(probabilities.values()) else "")
            view.append(bar + "\n", style="cyan")
        views.append(view)
    return views


def cls_table(task, items, results, options) -> list:
    pairs = any(item.text_pair is not None for item in items)
    texts = ("text", "text pair") if pairs else ("text",)
    table = _table(f"{len(items)} texts", ("#", *texts, "label", "score", "next"), ("#", "score"))
    for number, (item, probabilities) in enumerate(zip(items, results), start=1):
        ranked = list(probabilities.items())
        runner_up = f"{ranked[1][0]} ({ranked[1][1]:.3f})" if len(ranked) > 1 else ""
        shown = (item.text, item.text_pair or "") if pairs else (item.text,)
        table.add_row(_number(item, number), *shown, ranked[0][0], f"{ranked[0][1]:.3f}", runner_up)
    return [table]


# --------------------------------------------------------------------------------------------- the formats
GENERIC = {"json": as_json, "jsonl": as_jsonl}  # any task, from its records
VIEWS = {  # per task; pretty is what --format auto shows on a terminal
    "ner": {"pretty": ner_pretty, "conll": ner_conll, "table": ner_table},
    "qa": {"pretty": qa_pretty, "table": qa_table},
    "cls": {"pretty": cls_pretty, "table": cls_table},
}
PRETTY = {"ner": "colored entities", "qa": "answers in context", "cls": "labels and bars"}  # for --format's help
HEADERS = {("ner", "pretty"): legend}  # shown once above the predictions, from the model's labels


def formats(task: str) -> list[str]:
    """The --format choices of a task: auto, pretty, the generic formats, then the task's other views."""
    own = VIEWS.get(task, {})
    return ["auto", *(["pretty"] if "pretty" in own else []), *GENERIC, *(name for name in own if name != "pretty")]


def pretty_description(task: str) -> str:
    return PRETTY.get(task, "a readable view")


def header(task: str, output: str, labels: list[str]):
    """What goes once above the predictions in this format (NER's colour legend), or None."""
    make = HEADERS.get((task, output))
    return make(labels) if make else None


def render(task: str, items: list, results: list, output: str, out, **options) -> None:
    """Show predictions in an output format: machine formats as text on stdout, views on `out` (a Rich console
    on stdout). `options` are the task's record options (QA n_best, classification top_k)."""
    view = GENERIC.get(output) or VIEWS.get(task, {}).get(output)
    if view is None:
        from .errors import InputError

        raise InputError(f"no {output} output for {task}; formats are {', '.join(formats(task)[1:])}")
    shown = view(task, items, results, options)
    if isinstance(shown, str):
        sys.stdout.write(shown)
        sys.stdout.flush()
        return
    for part in shown:
        out.print(part)
