"""Born-again distillation with teacher annealing: the schedule, the loss, cached teacher outputs, resume, refusals."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from test_resume import interrupt_at, weights
from test_resume import settings as run_settings
from typer.testing import CliRunner

from mtlcli.cli.main import app
from mtlcli.config import resolve
from mtlcli.errors import TrainingInterrupted
from mtlcli.features import IGNORE, SOFT_TARGETS
from mtlcli.training import distill
from mtlcli.training.distill import mixed_loss, teacher_weight
from mtlcli.training.trainer import resume_config, train


def test_teacher_weight_anneals_linearly_from_one_to_zero():
    assert [teacher_weight(step, 4) for step in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert teacher_weight(0, 0) == 1.0  # an empty run divides by nothing


def test_distillation_loss_against_a_hand_computed_case():
    # NER: one sentence of 3 tokens, the first [CLS] (ignored), two labels
    logits = torch.tensor([[[5.0, -5.0], [1.0, 0.0], [0.0, 2.0]]])
    labels = torch.tensor([[IGNORE, 0, 1]])
    soft = torch.tensor([[[0.5, 0.5], [0.8, 0.2], [0.25, 0.75]]])
    gold = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
    out = {"logits": logits, "loss": gold}

    def log_q(a, b):  # log-softmax over two logits, by hand
        z = math.log(math.exp(a) + math.exp(b))
        return a - z, b - z

    token1, token2 = log_q(1.0, 0.0), log_q(0.0, 2.0)
    hand_gold = -(token1[0] + token2[1]) / 2
    hand_soft = -((0.8 * token1[0] + 0.2 * token1[1]) + (0.25 * token2[0] + 0.75 * token2[1])) / 2
    for weight in (1.0, 0.3, 0.0):
        got = mixed_loss("ner", out, {"labels": labels, SOFT_TARGETS: soft}, weight)
        assert float(got) == pytest.approx((1 - weight) * hand_gold + weight * hand_soft, rel=1e-6)
    # QA: a window of 2 tokens and a padded third (masked by the head, zero soft target); start and end averaged
    start, end = torch.tensor([[2.0, 0.0, -1e4]]), torch.tensor([[0.0, 0.0, -1e4]])
    soft = torch.tensor([[[1.0, 0.5], [0.0, 0.5], [0.0, 0.0]]])
    qa_soft = distill.tasks.get("qa").soft_loss({"start_logits": start, "end_logits": end}, soft, {})
    assert float(qa_soft) == pytest.approx((-log_q(2.0, 0.0)[0] + math.log(2)) / 2, rel=1e-5)


def base(backbone_dir, out, ner_file, qa_file, *more):
    return run_settings(backbone_dir, out, ner_file, qa_file) + ["epochs=1", "save_every=0", *more]


def teachers(backbone_dir, tmp_path, ner_file, qa_file) -> dict[str, str]:
    """Single-task teachers trained by mtl on the student's data (one epoch each)."""
    found = {}
    for task in ("ner", "qa"):
        keys = [s for s in base(backbone_dir, tmp_path / f"teacher-{task}", ner_file, qa_file) if "_train" not in s]
        data = f'ner_train="{ner_file}"' if task == "ner" else f'qa_train="{qa_file}"'
        train(resolve([], [s for s in keys if not s.startswith("ner_valid")] + [data]))
        found[task] = str(tmp_path / f"teacher-{task}" / "last")
    return found


def with_teachers(found: dict[str, str]) -> list[str]:
    return [f'{task}_teacher="{directory}"' for task, directory in found.items()]


def steps(run_dir) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["type"] == "step"]


def test_teacher_outputs_are_computed_once_cached_and_never_in_the_loop(
    backbone_dir, tmp_path, ner_file, qa_file, monkeypatch
):
    import mtlcli.model
    from mtlcli.model import MultiTaskModel

    found = teachers(backbone_dir, tmp_path, ner_file, qa_file)
    cache = tmp_path / "cache"
    loop_started, teacher_calls = [], []
    load_model, forward = mtlcli.model.load_model, MultiTaskModel.forward

    def load_teacher(directory, device="cpu"):
        model, tokenizer = load_model(directory, device)
        model.is_teacher = True
        return model, tokenizer

    def watched_forward(self, task, *args, **kwargs):
        if getattr(self, "is_teacher", False):
            assert not loop_started, "a teacher ran inside the training loop"
            teacher_calls.append(task)
        return forward(self, task, *args, **kwargs)

    monkeypatch.setattr(mtlcli.model, "load_model", load_teacher)
    monkeypatch.setattr(MultiTaskModel, "forward", watched_forward)
    events = []

    def on_event(kind, data):
        events.append((kind, data))
        if kind == "start":
            loop_started.append(True)

    first = tmp_path / "first"
    train(
        resolve([], base(backbone_dir, first, ner_file, qa_file, f'cache_dir="{cache}"', *with_teachers(found))),
        on_event,
    )
    assert set(teacher_calls) == {"ner", "qa"}  # one pass each, before the loop
    assert [data["cached"] for kind, data in events if kind == "teacher"] == [False, False]
    assert len(list(cache.glob("teacher-*.pt"))) == 2
    records = steps(first)
    total = len(records)
    assert [r["teacher_weight"] for r in records] == pytest.approx([1 - s / total for s in range(total)])

    # a second run finds every teacher output in the cache: no teacher pass at all, and the same weights
    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher ran although its outputs were cached")

    monkeypatch.setattr(distill, "soft_targets", no_teacher)
    events.clear()
    second = tmp_path / "second"
    settings = base(backbone_dir, second, ner_file, qa_file, f'cache_dir="{cache}"', *with_teachers(found))
    train(resolve([], settings), on_event)
    assert [data["cached"] for kind, data in events if kind == "teacher"] == [True, True]
    expected, got = weights(first), weights(second)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    # and the teachers did change what was learned: a student without them ends elsewhere
    alone = tmp_path / "alone"
    train(resolve([], base(backbone_dir, alone, ner_file, qa_file, f'cache_dir="{cache}"')))
    assert not all(torch.equal(expected[k], weights(alone)[k]) for k in expected)


def test_a_resumed_student_is_bit_identical(backbone_dir, tmp_path, ner_file, qa_file):
    found = with_teachers(teachers(backbone_dir, tmp_path, ner_file, qa_file))
    straight, run = tmp_path / "straight", tmp_path / "interrupted"
    train(resolve([], base(backbone_dir, straight, ner_file, qa_file, *found, "epochs=2", "save_every=3")))
    with pytest.raises(TrainingInterrupted):
        train(
            resolve([], base(backbone_dir, run, ner_file, qa_file, *found, "epochs=2", "save_every=3")), interrupt_at(5)
        )
    train(resume_config(run), resume=True)
    expected, got = weights(straight), weights(run)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert [r["teacher_weight"] for r in steps(run)] == [r["teacher_weight"] for r in steps(straight)]


STUDENT_LABELS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]  # of NER_SENTENCES


@pytest.fixture(scope="module")
def fake_teacher(backbone_dir, tmp_path_factory):
    """An untrained NER model with the student's labels, vocabulary and segment ids: refused only once edited."""
    from conftest import tiny_model_dir

    directory = tmp_path_factory.mktemp("fake-teacher") / "model"
    tiny_model_dir("bert", backbone_dir, directory, tasks=("ner",), segments=False)
    edit_json(directory / "config.json", lambda config: config["labels"].update(ner=STUDENT_LABELS))
    return directory


def edit_json(path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def swap_two_tokens(tokenizer: dict) -> None:
    vocab = tokenizer["model"]["vocab"]
    first, second = sorted(vocab, key=vocab.get)[10:12]
    vocab[first], vocab[second] = vocab[second], vocab[first]


EDITS = {  # what is changed in a copy of the teacher → the reason it is refused
    "missing": (None, None, "model directory not found"),
    "task": ("config.json", lambda c: c.update(tasks=["qa"]), "it has no NER head (its tasks: QA)"),
    "labels": (
        "config.json",
        lambda c: c["labels"].update(ner=["O", "B-MISC", "I-MISC"]),
        f"its labels (O, B-MISC, I-MISC) differ from the student's ({', '.join(STUDENT_LABELS)})",
    ),
    "vocab": ("tokenizer.json", swap_two_tokens, "its tokenizer differs from the student's ("),
    "segments": (
        "config.json",
        lambda c: c.update(segment_ids=True),
        "it was trained with segment ids, the student without",
    ),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_a_teacher_that_cannot_teach_is_refused_in_one_line(
    backbone_dir, tmp_path, ner_file, qa_file, fake_teacher, case
):
    name, change, reason = EDITS[case]
    teacher = tmp_path / "teacher"
    if name:
        shutil.copytree(fake_teacher, teacher)
        edit_json(teacher / name, change)
    keys = base(backbone_dir, tmp_path / "student", ner_file, qa_file)
    result = CliRunner().invoke(app, ["train", "--teacher", f"ner={teacher}"] + [a for k in keys for a in ("--set", k)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {teacher}: refused as the NER teacher: {reason}")
    assert not (tmp_path / "student" / "last").exists()


def test_an_unchanged_teacher_is_accepted(backbone_dir, ner_file, qa_file, fake_teacher):
    from mtlcli.backbones import load_tokenizer
    from mtlcli.spec import read_spec

    spec = read_spec(fake_teacher)
    distill.check_teacher("ner", str(fake_teacher), load_tokenizer(str(backbone_dir)), spec)  # raises nothing


def test_teacher_flag_syntax_and_config_checks(tmp_path):
    result = CliRunner().invoke(app, ["train", "--teacher", "pos=runs/x", "--dry-run"])
    assert result.exit_code == 2 and "--teacher takes TASK=DIR" in result.output
    result = CliRunner().invoke(app, ["train", "--teacher", "ner=runs/x", "--dry-run"])
    assert result.exit_code == 2 and "ner_teacher: given without ner_train" in " ".join(result.output.split())
