"""mtlcli.render (tables, entity colours) and mtlcli.render_predictions (every predict-* output format)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from rich.console import Console

from mtlcli import render_predictions as views
from mtlcli import tasks
from mtlcli.errors import InputError
from mtlcli.inputs import QaItem, TextItem
from mtlcli.render import ENTITY_COLORS, confusion_table, entity_color, metrics_table, tagged_text
from mtlcli.tasks import Metric, Task
from mtlcli.tasks.ner import Entity, NerResult
from mtlcli.tasks.qa import Span


def shown(renderable, width: int = 120) -> str:
    """What a Rich renderable prints, without colours."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, highlight=False, soft_wrap=True).print(renderable)
    return buffer.getvalue()


def row(line: str) -> list[str]:
    """The cells of one printed table row."""
    return [cell.strip() for cell in line.split("│")[1:-1]]


def cells(table, column: int) -> list[str]:
    return [str(cell) for cell in table.columns[column]._cells]


class Toy(Task):
    """A task with nothing but a record and metrics: what the generic formats and tables need."""

    name, title, short_title = "toy", "toy task", "toy"
    metrics = (Metric("hits", "hit rate"), Metric("loss", "mean loss", fraction=False))
    primary_metric = "hits"

    def record(self, item, result, **options):
        return {"text": item.text, "value": result} | options


@pytest.fixture
def toy():
    task = tasks.register(Toy())
    yield task
    tasks.unregister(task.name)


# ----------------------------------------------------------------------------------------- mtlcli.render
def test_tagged_text_marks_each_entity_run_once():
    text = tagged_text(
        ["Steve", "Jobs", "met", "Tim", "Cook", "in", "New", "York"],
        ["B-PER", "I-PER", "O", "B-PER", "B-PER", "O", "B-LOC", "I-LOC"],
    )
    # B-PER B-PER is two entities, B-LOC I-LOC one; no space is left at the end
    assert text.plain == "Steve Jobs[PER] met Tim[PER] Cook[PER] in New York[LOC]"
    styles = {text.plain[span.start : span.end]: str(span.style) for span in text.spans}
    assert styles["Steve Jobs"] == "bold cyan" and styles["New York"] == "bold green" and styles["[LOC]"] == "green"


def test_entity_colors_are_fixed_for_conll_types_and_stable_for_others():
    assert [entity_color(kind) for kind in ("PER", "ORG", "LOC", "MISC")] == list(ENTITY_COLORS.values())
    code = "from mtlcli.render import entity_color; print([entity_color(k) for k in ('DATE', 'GPE', 'EVENT', 'X')])"
    # the same colours in every process: Python's own str hash is salted per process
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": os.pathsep.join(sys.path)},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1
    assert runs.pop().strip() == str([entity_color(k) for k in ("DATE", "GPE", "EVENT", "X")])
    assert (
        len({entity_color(k) for k in ("DATE", "GPE", "EVENT", "X", "NORP", "LAW")} - set(ENTITY_COLORS.values())) > 1
    )


def test_metrics_table_has_one_row_per_registry_metric_the_scores_hold(toy):
    valid = {"qa": {"exact_match": 75.0, "f1": 80.5}, "toy": {"hits": 0.25, "loss": 1.5}}
    table = metrics_table("after epoch 1", valid, best={"qa": 81.0, "toy": 0.5})
    assert cells(table, 0) == ["QA", "", "toy task", ""]
    assert cells(table, 1) == [m.label for name in valid for m in tasks.get(name).metrics if m.key in valid[name]]
    assert cells(table, 1)[:2] == ["exact match", "F1"]  # a SQuAD v1.1 file: no HasAns/NoAns rows
    assert cells(table, 2) == ["75.0000", "80.5000", "25.00", "1.5000"]  # fractions as percentages
    assert cells(table, 3) == ["", "81.0000", "50.00", ""]  # the best value beside the primary metric only


def test_confusion_table_keeps_the_most_frequent_gold_labels():
    labels = [f"L{i}" for i in range(25)]
    matrix = [[(i + 1) if i == j else 0 for j in range(25)] for i in range(25)]  # L24 the most frequent
    matrix[0][1] = 3
    table = confusion_table("confusion", labels, matrix, limit=20)
    kept = [f"L{i}" for i in range(5, 25)]
    assert [column.header for column in table.columns] == ["gold \\ pred", *kept]
    assert cells(table, 0) == kept and "(20 most frequent of 25 labels)" in table.title
    small = confusion_table("confusion", labels[:2], [row[:2] for row in matrix[:2]])
    assert cells(small, 1) == ["[bold green]1[/]", "[dim]0[/]"] and cells(small, 2) == ["[red]3[/]", "[bold green]2[/]"]


# ----------------------------------------------------------------------------------------- one record per task
NER_TEXT = "Steve Jobs lives in Paris"
NER = NerResult(
    NER_TEXT,
    [Entity("Steve Jobs", "PER", 0, 10, 0.91234), Entity("Paris", "LOC", 20, 25, 0.5)],
    [(0, 5), (6, 10), (11, 16), (17, 19), (20, 25)],
    ["B-PER", "I-PER", "O", "O", "B-LOC"],
)
QA_ITEM = QaItem("Where does he live?", "Steve Jobs lives in Paris, France.", id="q7")
QA = [Span("Paris", 20, 25, 0.61234), Span("France", 27, 33, 0.2)]
CLS = {"person": 0.75, "place": 0.2, "other": 0.05}
CASES = {  # task: (item, result, record options)
    "ner": (TextItem(NER_TEXT, id="n1"), NER, {}),
    "qa": (QA_ITEM, QA, {"n_best": 2}),
    "cls": (TextItem("Steve Jobs"), CLS, {"top_k": 2}),
}


def render(task: str, output: str, capsys, items=None, results=None, **options) -> str:
    """stdout of one render call (machine formats and the views' console alike)."""
    item, result, record_options = CASES[task]
    views.render(
        task,
        items or [item],
        results or [result],
        output,
        Console(highlight=False, soft_wrap=True, color_system=None),
        **(record_options | options),
    )
    return capsys.readouterr().out


@pytest.mark.parametrize("task", CASES)
def test_json_lines_are_the_task_record_after_the_id(task, capsys):
    item, result, options = CASES[task]
    expected = ({"id": item.id} if item.id else {}) | tasks.get(task).record(item, result, **options)
    assert render(task, "jsonl", capsys) == json.dumps(expected, ensure_ascii=False) + "\n"
    assert json.loads(render(task, "json", capsys, items=[item, item], results=[result, result])) == [expected] * 2


def test_records_carry_the_options(capsys):
    [qa] = map(json.loads, render("qa", "jsonl", capsys).splitlines())
    assert qa["answer"] == "Paris" and [a["answer"] for a in qa["n_best"]] == ["Paris", "France"]
    assert qa["score"] == 0.6123
    [cls] = map(json.loads, render("cls", "jsonl", capsys).splitlines())
    assert cls["probabilities"] == {"person": 0.75, "place": 0.2}  # --top-k 2


def test_generic_formats_serve_any_registered_task(toy, capsys):
    assert views.formats("toy") == ["auto", "json", "jsonl"]
    views.render("toy", [TextItem("a", id="7")], [0.5], "jsonl", None, scale=2)
    assert json.loads(capsys.readouterr().out) == {"id": "7", "text": "a", "value": 0.5, "scale": 2}
    with pytest.raises(InputError, match="no table output for toy"):
        views.render("toy", [TextItem("a")], [0.5], "table", None)


def test_conll_is_one_word_and_tag_per_line(capsys):
    assert render("ner", "conll", capsys) == "Steve\tB-PER\nJobs\tI-PER\nlives\tO\nin\tO\nParis\tB-LOC\n\n"


def test_ner_views(capsys):
    assert render("ner", "pretty", capsys) == "Steve Jobs[PER] lives in Paris[LOC]\n"
    table = render("ner", "table", capsys)
    assert "2 entities in 1 texts" in table
    assert [row(line) for line in table.splitlines() if "Paris" in line] == [
        ["n1", "Paris", "LOC", "20", "25", "0.500"]
    ]
    assert shown(views.header("ner", "pretty", ["O", "B-DATE", "I-DATE", "B-LOC", "B-PER", "I-PER"])).split() == [
        "entities:",
        "PER",
        "LOC",
        "DATE",
    ]
    assert views.header("ner", "table", ["O", "B-PER"]) is None


def test_qa_views(capsys):
    pretty = render("qa", "pretty", capsys).splitlines()
    assert pretty[:2] == ["Q: Where does he live?", "A: Paris  (score 0.612, characters 20–25)"]
    assert pretty[2].strip() == QA_ITEM.context and pretty[3].strip() == "2. France  (0.200, 27–33)"
    empty = render("qa", "pretty", capsys, results=[[Span("", 0, 0, 0.0)]])
    assert "A: (no answer found)" in empty
    rows = [line for line in render("qa", "table", capsys).splitlines() if "Paris" in line or "France" in line]
    assert "q7" in rows[0] and "Where does he live?" in rows[0] and "q7" not in rows[1]


def test_cls_views(capsys):
    pretty = render("cls", "pretty", capsys, top_k=0).splitlines()
    assert pretty[0] == "Steve Jobs"
    assert [line.split()[:2] for line in pretty[1:4]] == [["person", "75.0%"], ["place", "20.0%"], ["other", "5.0%"]]
    assert pretty[1].endswith("█" * 15) and pretty[2].endswith("█" * 4)  # 20 blocks are 100%
    assert len(render("cls", "pretty", capsys, top_k=1).splitlines()) == 3  # text, one label, blank line
    [line] = [line for line in render("cls", "table", capsys).splitlines() if "Steve" in line]
    assert row(line) == ["1", "Steve Jobs", "person", "0.750", "place (0.200)"]


def test_a_new_format_is_one_entry(monkeypatch, capsys):
    def csv(task, items, results, options):
        return "".join(f"{item.text},{next(iter(result))}\n" for item, result in zip(items, results))

    monkeypatch.setitem(views.VIEWS, "cls", views.VIEWS["cls"] | {"csv": csv})
    assert views.formats("cls") == ["auto", "pretty", "json", "jsonl", "table", "csv"]
    assert render("cls", "csv", capsys) == "Steve Jobs,person\n"
    assert views.formats("ner") == ["auto", "pretty", "json", "jsonl", "conll", "table"]
