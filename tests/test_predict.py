"""predict-ner / predict-qa / predict-cls: exact offsets, batching, long contexts, JSONL in and out, bad input."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest
from conftest import CORPUS, NER_SENTENCES, QA_PAIRS
from typer.testing import CliRunner

from mtlcli.cli.main import app

runner = CliRunner()

TRICKY = [
    "Apple Inc. was founded by Steve Jobs in California.",
    "  Multiple   spaces\tand\t\ttabs  ",
    "Café déjà vu in Zürich — naïve 🙂 emoji! 東京",
    "(Glued)punctuation,everywhere...Paris!Seattle?",
    "Supercalifragilisticexpialidocious" * 3 + " Obama",
    "x",
    "",
    "   ",
]


def run(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def jsonl(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def model_dir(backbone_dir, tmp_path_factory):
    """A tiny NER + QA + classification model trained for one epoch."""
    import mtlcli.api as mtl

    data = tmp_path_factory.mktemp("predict-data")
    ner = data / "ner.conll"
    ner.write_text("\n\n".join("\n".join(f"{t} {g}" for t, g in zip(*s)) for s in NER_SENTENCES) + "\n")
    qa = data / "qa.json"
    qa.write_text(
        json.dumps(
            {
                "version": "1.1",
                "data": [
                    {
                        "title": str(i),
                        "paragraphs": [
                            {
                                "context": c,
                                "qas": [
                                    {"id": f"q{i}", "question": q, "answers": [{"text": a, "answer_start": c.index(a)}]}
                                ],
                            }
                        ],
                    }
                    for i, (c, q, a) in enumerate(QA_PAIRS)
                ],
            }
        )
    )
    cls = data / "cls.csv"
    cls.write_text(
        "text,label\n" + "".join(f'"{" ".join(t)}",{"person" if "B-PER" in g else "other"}\n' for t, g in NER_SENTENCES)
    )
    result = mtl.train(
        backbone=str(backbone_dir),
        ner_train=str(ner),
        qa_train=str(qa),
        cls_train=str(cls),
        epochs=1,
        output_dir=str(data / "run"),
        cache_dir="",
        qa_max_length=64,
        doc_stride=24,
    )
    return result.output_dir / "last"


@pytest.fixture(scope="module")
def eager_model_dir(model_dir, tmp_path_factory):
    """The same model with the O tag switched off and no classification head: every word is in an entity, so
    entity boundaries fall everywhere (offsets get a real workout)."""
    import torch

    from mtlcli.model import load_model, save_model

    model, tokenizer = load_model(model_dir)
    with torch.no_grad():
        model.heads["ner"].bias[model.spec.labels["ner"].index("O")] = -1e4
    del model.heads["cls"]
    model.spec.tasks = ["ner", "qa"]
    target = tmp_path_factory.mktemp("eager") / "model"
    save_model(model, tokenizer, target)
    return target


def check_entities(text: str, entities: list[dict]) -> None:
    for e in entities:
        assert text[e["start"] : e["end"]] == e["text"] and e["text"] and e["text"] == e["text"].strip()
        assert 0 <= e["score"] <= 1
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(entities))


def test_ner_offsets_are_exact_on_tricky_text_and_words_are_merged(eager_model_dir):
    objs = jsonl(run("predict-ner", eager_model_dir, *TRICKY))
    assert [o["text"] for o in objs] == TRICKY
    for text, obj in zip(TRICKY, objs):
        check_entities(text, obj["entities"])
    assert sum(len(o["entities"]) for o in objs) >= 15  # every word is in some entity: boundaries everywhere
    assert objs[-1]["entities"] == [] and objs[-2]["entities"] == []
    # CoNLL: one line per word, sub-tokens merged back into their word; together the words cover every non-space
    conll = run("predict-ner", eager_model_dir, *TRICKY, "--format", "conll")
    assert conll.exit_code == 0, conll.output
    blocks = conll_blocks(conll.stdout)
    assert len(blocks) == len(TRICKY)
    for text, block in zip(TRICKY, blocks):
        assert "".join(word for word, _ in block) == "".join(text.split())
    assert blocks[4][0][0] == "Supercalifragilisticexpialidocious" * 3
    # entities are the maximal B-/I- runs of one type of the word tags
    for obj, block in zip(objs, blocks):
        tags = [tag for _, tag in block]
        runs = sum(1 for i, t in enumerate(tags) if t.startswith("B-") or i == 0 or t[2:] != tags[i - 1][2:])
        assert len(obj["entities"]) == runs


def conll_blocks(output: str) -> list[list[tuple[str, str]]]:
    """(word, tag) lines of each text; a blank line ends a text."""
    blocks = [[]]
    for line in output.split("\n")[:-1]:
        if line:
            word, tag = line.split("\t")
            blocks[-1].append((word, tag))
        else:
            blocks.append([])
    return blocks[:-1]


def test_pretokenized_keeps_tokens_as_given(model_dir):
    split = run("predict-ner", model_dir, "Paris,France (UK)", "--format", "conll")
    kept = run("predict-ner", model_dir, "Paris,France (UK)", "--format", "conll", "--pretokenized")
    assert [w for w, _ in conll_blocks(split.stdout)[0]] == ["Paris", ",", "France", "(", "UK", ")"]
    assert [w for w, _ in conll_blocks(kept.stdout)[0]] == ["Paris,France", "(UK)"]


@pytest.mark.parametrize("precision", ["auto", "fp32"])
def test_batching_never_changes_an_output(eager_model_dir, precision):
    """Bitwise: the same entities, answers and scores with any batch size (bf16 included, where auto picks it)."""
    texts = TRICKY + CORPUS
    one = run("predict-ner", eager_model_dir, *texts, "--batch-size", "1", "--precision", precision)
    many = run("predict-ner", eager_model_dir, *texts, "--batch-size", "5", "--precision", precision)
    assert jsonl(one) == jsonl(many)
    records = "".join(
        json.dumps({"context": c * (1 + i % 4), "question": q}) + "\n" for i, (c, q, _) in enumerate(QA_PAIRS)
    )
    one = run(
        "predict-qa", eager_model_dir, "--batch-size", "1", "--precision", precision, "--n-best", "3", input=records
    )
    many = run(
        "predict-qa", eager_model_dir, "--batch-size", "16", "--precision", precision, "--n-best", "3", input=records
    )
    assert jsonl(one) == jsonl(many)


def test_engine_results_are_bitwise_the_same_with_any_batch_size(model_dir):
    from mtlcli.inference.predictor import Predictor

    predictor = Predictor(model_dir, device="cpu")
    texts = [" ".join(t) for t, _ in NER_SENTENCES] + TRICKY
    results = {}
    for batch_size in (1, 64):
        predictor.batch_size = batch_size
        results[batch_size] = (predictor.ner(texts), predictor.cls(texts))
    assert results[1] == results[64]  # dataclasses and dicts: scores compared exactly


def test_fixed_blocks_make_a_linear_layer_batch_invariant():
    import torch

    from mtlcli.inference.batching import bucket_width, bucketed_batches
    from mtlcli.inference.invariant import InferenceLinear

    torch.manual_seed(0)
    layer = InferenceLinear(torch.nn.Linear(96, 40), block_rows=16)
    x = torch.randn(5, 12, 96)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        together = layer(x)
        for i in range(5):
            assert torch.equal(together[i], layer(x[i : i + 1])[0])
        plain = torch.nn.functional.linear(x, layer.weight, layer.bias)
    assert (together.float() - plain.float()).abs().max() < 0.1  # the same layer
    widths = [bucket_width(n) for n in range(1, 513)]
    assert all(n <= w <= max(n + 7, n * 1.13) for n, w in zip(range(1, 513), widths)) and len(set(widths)) < 60
    assert bucket_width(500, limit=505) == 505 and bucket_width(600, limit=512) == 640
    batches = bucketed_batches([5, 30, 7, 31, 9, 8, 100], batch_size=2)
    assert batches == [([0, 2], 8), ([5], 8), ([4], 16), ([1, 3], 32), ([6], 104)]


@pytest.mark.parametrize("shortest", [8, 512, None])
def test_row_spans_and_fixed_blocks_both_compute_the_layer(monkeypatch, tmp_path, shortest):
    import torch

    from mtlcli.inference import invariant

    monkeypatch.setattr(invariant, "shortest_span", lambda *shape: shortest)
    torch.manual_seed(0)
    layer = invariant.InferenceLinear(torch.nn.Linear(64, 24), block_rows=1024)
    for rows in (1, 700, invariant.MAX_ROWS + 3, 2 * invariant.MAX_ROWS + 600):
        x = torch.randn(rows, 64)
        with torch.inference_mode():
            assert torch.allclose(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias), atol=1e-5)


def test_the_span_check_is_made_once_and_kept_on_disk(monkeypatch, tmp_path):
    import json

    import torch

    from mtlcli.inference import invariant

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    invariant._cached_probes.cache_clear()
    answer = invariant.shortest_span(48, 16, torch.bfloat16)
    assert answer in (*invariant.SPAN_MINIMA, None)
    saved = json.loads((tmp_path / "mtl" / "gemm-spans.json").read_text())
    assert list(saved.values()) == [{"48x16|torch.bfloat16": answer}]
    invariant._cached_probes.cache_clear()
    monkeypatch.setattr(torch, "addmm", None)  # a second process answers from the file, without multiplying
    assert invariant.shortest_span(48, 16, torch.bfloat16) == answer
    invariant._cached_probes.cache_clear()


@pytest.fixture
def knows_hawaii(monkeypatch, backbone_dir):
    """A QA head that points at the word "hawaii" wherever it is: the answer is known, the windows are tested."""
    import torch

    from mtlcli.backbones import load_tokenizer
    from mtlcli.model import MultiTaskModel

    target = load_tokenizer(str(backbone_dir))("hawaii", add_special_tokens=False)["input_ids"]
    assert len(target) == 1
    real = MultiTaskModel.forward

    def forward(self, task, input_ids, attention_mask, **targets):
        if task != "qa":
            return real(self, task, input_ids, attention_mask, **targets)
        logits = (input_ids == target[0]).float() * 20 - 10
        return {"start_logits": logits, "end_logits": logits.clone()}

    monkeypatch.setattr(MultiTaskModel, "forward", forward)
    return torch


def test_long_context_answer_in_the_last_window(model_dir, tmp_path, knows_hawaii):
    context = "The quick brown fox jumps over the lazy dog. " * 2222 + "Barack Obama was born in Hawaii."
    assert len(context.split()) > 20_000
    path = tmp_path / "context.txt"
    path.write_text(context, encoding="utf-8")
    [obj] = jsonl(run("predict-qa", model_dir, "--context", path, "-q", "Where was Obama born?", "--n-best", "2"))
    assert (obj["answer"], obj["start"], obj["end"]) == ("Hawaii", context.rindex("Hawaii"), len(context) - 1)
    assert obj["n_best"][0]["answer"] == "Hawaii" and len(obj["n_best"]) <= 2


def test_qa_answers_are_exact_substrings(model_dir, tmp_path):
    context = "Café  déjà vu:\tApple was founded by Steve Jobs in California. 🙂 " * 30
    path = tmp_path / "context.txt"
    path.write_text(context, encoding="utf-8")
    questions = [q for _, q, _ in QA_PAIRS]
    objs = jsonl(
        run(
            "predict-qa",
            model_dir,
            "--context",
            path,
            *[x for q in questions for x in ("-q", q)],
            "--n-best",
            "4",
            "--max-answer-length",
            "5",
        )
    )
    assert [o["question"] for o in objs] == questions
    for obj in objs:
        for answer in obj["n_best"]:
            assert context[answer["start"] : answer["end"]] == answer["answer"] != ""
        scores = [a["score"] for a in obj["n_best"]]
        assert scores == sorted(scores, reverse=True) and sum(scores) <= 1 + 1e-3


def test_stdin_stdout_jsonl_round_trip(model_dir):
    lines = ["Steve Jobs founded Apple.", "", "  tabs\tand  spaces ", "Zürich 🙂"]
    first = run("predict-ner", model_dir, input="\r\n".join(lines) + "\r\n")
    objs = jsonl(first)
    assert [o["text"] for o in objs] == lines  # one object per input line, the line as given (CR LF removed)
    again = run("predict-ner", model_dir, "--input-format", "jsonl", input=first.stdout)
    assert jsonl(again) == objs
    records = [{"id": f"a{i}", "context": c, "question": q} for i, (c, q, _) in enumerate(QA_PAIRS)]
    records[3]["id"] = 17
    answers = jsonl(run("predict-qa", model_dir, input="\n".join(json.dumps(r) for r in records) + "\n\n"))
    assert [a["id"] for a in answers] == [str(r["id"]) for r in records]
    for record, answer in zip(records, answers):
        assert record["context"][answer["start"] : answer["end"]] == answer["answer"]
    # a context from stdin, questions as options
    [answer] = jsonl(run("predict-qa", model_dir, "--context", "-", "-q", "Who?", input="Steve Jobs founded Apple.\n"))
    assert "Steve Jobs founded Apple.\n"[answer["start"] : answer["end"]] == answer["answer"]


def test_json_table_and_pretty_formats(model_dir):
    whole = run("predict-ner", model_dir, "Apple hired Steve Jobs", "Paris", "--json")
    assert whole.exit_code == 0 and len(whole.stdout.splitlines()) == 1
    assert [o["text"] for o in json.loads(whole.stdout)] == ["Apple hired Steve Jobs", "Paris"]
    for fmt in ("table", "pretty"):
        shown = run("predict-ner", model_dir, "Apple hired Steve Jobs", "--format", fmt)
        assert shown.exit_code == 0 and "\x1b[" not in shown.stdout  # no colours when stdout is no terminal
    pretty = run("predict-ner", model_dir, "Apple hired Steve Jobs", "--format", "pretty")
    assert "Apple hired Steve Jobs" in pretty.stdout.replace("[PER]", "").replace("[ORG]", "").replace(
        "[LOC]", ""
    ).replace("[MISC]", "")
    assert pretty.stdout.splitlines()[0].split() == ["entities:", "PER", "ORG", "LOC"]  # the legend: the model's types
    table = run("predict-qa", model_dir, "-c", "-", "-q", "Who?", "--format", "table", input="Steve Jobs.")
    assert table.exit_code == 0 and "Who?" in table.stdout
    assert run("predict-ner", model_dir, "x", "--json", "--format", "table").exit_code == 2


def test_classification_labels_and_probabilities(model_dir):
    objs = jsonl(run("predict-cls", model_dir, "Steve Jobs", "the dog jumps"))
    for obj in objs:
        assert set(obj["probabilities"]) == {"person", "other"}
        assert sum(obj["probabilities"].values()) == pytest.approx(1, abs=1e-3)
        assert obj["label"] == max(obj["probabilities"], key=obj["probabilities"].get)
        assert obj["score"] == obj["probabilities"][obj["label"]]
    [top] = jsonl(
        run(
            "predict-cls",
            model_dir,
            "--top-k",
            "1",
            "--input-format",
            "jsonl",
            input=json.dumps({"id": "m1", "text": "Steve Jobs"}) + "\n",
        )
    )
    assert top["id"] == "m1" and list(top["probabilities"]) == [top["label"]]


def test_interactive_mode_on_a_terminal(model_dir, monkeypatch):
    import mtlcli.cli.predict as command

    monkeypatch.setattr(command, "stdin_is_terminal", lambda: True)
    ner = run("predict-ner", model_dir, "--format", "jsonl", input="Steve Jobs founded Apple.\n\nParis\n")
    assert [o["text"] for o in jsonl(ner)] == ["Steve Jobs founded Apple.", "Paris"]
    assert "text>" in ner.stderr
    qa = run(
        "predict-qa",
        model_dir,
        "--format",
        "jsonl",
        input="Steve Jobs founded Apple in California.\nWho founded Apple?\nWhere?\n\nParis is in France.\nWhere?\n",
    )
    answers = jsonl(qa)
    assert [a["question"] for a in answers] == ["Who founded Apple?", "Where?", "Where?"]
    assert "context>" in qa.stderr and "question>" in qa.stderr
    assert "Paris is in France."[answers[2]["start"] : answers[2]["end"]] == answers[2]["answer"]


def test_interactive_classification_skips_blank_lines(model_dir, monkeypatch):
    """A blank line at the prompt (Enter pressed once too often) gives no prediction, as in predict-ner."""
    import mtlcli.cli.predict as command

    monkeypatch.setattr(command, "stdin_is_terminal", lambda: True)
    result = run("predict-cls", model_dir, "--format", "jsonl", input="Steve Jobs\n\n   \nthe dog jumps\n\t\n")
    assert [o["text"] for o in jsonl(result)] == ["Steve Jobs", "the dog jumps"]
    assert result.stderr.count("text>") == 6  # every line was read at the prompt, and Ctrl-D once more


def test_quantized_model_still_gives_exact_offsets(eager_model_dir):
    objs = jsonl(run("predict-ner", eager_model_dir, *TRICKY, "--quantize"))
    for text, obj in zip(TRICKY, objs):
        check_entities(text, obj["entities"])
    assert run("predict-ner", eager_model_dir, "x", "--quantize", "--precision", "bf16").exit_code == 2


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (("predict-qa", "{model}", "--context", "{blank}", "-q", "Who?"), None, "the context is empty"),
        (("predict-qa", "{model}", "--context", "-", "-q", "Who?"), " \n\t\n", "<stdin>: the context is empty"),
        (("predict-qa", "{model}", "--context", "-", "-q", "   "), "Apple.", "the question is empty"),
        (
            ("predict-qa", "{model}"),
            (
                '{"context": "Apple.", "question": "Who?"}\n{"context": "Apple.", "question": " "}\n'
                '[1]\n{"context": 3, "question": "x"}\n'
            ),
            "<stdin>:2: the question is empty (and 2 more)",
        ),
        (("predict-qa", "{model}", "-q", "Who?"), None, "--question needs --context"),
        (("predict-qa", "{model}", "--context", "{missing}", "-q", "Who?"), None, "file not found"),
        (("predict-ner", "{model}", "--file", "{latin1}"), None, ":2: not UTF-8 text"),
        (("predict-ner", "{model}", "Paris", "--file", "{blank}"), None, "not both"),
        (("predict-ner", "{missing}", "Paris"), None, "model directory not found"),
        (("predict-cls", "{eager}", "Paris"), None, "no classification head"),
        (("predict-ner", "{model}", "--input-format", "jsonl"), '{"text": 1}\n', "<stdin>:1: 'text' must be a string"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, stdin, message, model_dir, eager_model_dir, tmp_path):
    (tmp_path / "blank.txt").write_text(" \n \n")
    (tmp_path / "latin1.txt").write_bytes("Paris\nZürich\n".encode("latin-1"))
    paths = {
        "model": model_dir,
        "eager": eager_model_dir,
        "blank": tmp_path / "blank.txt",
        "latin1": tmp_path / "latin1.txt",
        "missing": tmp_path / "nope",
    }
    result = run(*[a.format(**paths) for a in args], input=stdin)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr.splitlines()[0], result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_skip_bad_drops_records_and_says_how_many(model_dir):
    records = '{"context": "Apple.", "question": "Who?"}\nnot json\n{"context": "", "question": "x"}\n'
    result = run("predict-qa", model_dir, "--skip-bad", input=records)
    assert len(jsonl(result)) == 1 and "skipped 2" in result.stderr


def test_help_imports_neither_torch_nor_rich():
    code = (
        "import sys; from typer.testing import CliRunner; from mtlcli.cli.main import app; "
        "r = CliRunner().invoke(app, ['predict-qa', '--help']); assert r.exit_code == 0, r.output; "
        "assert '--n-best' in r.output; assert '  mtl predict-qa runs/demo/last < questions.jsonl' in r.output; "
        "print(sorted(m for m in ('torch', 'transformers', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
