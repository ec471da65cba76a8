"""The trainer's step: the public `Run.train_step`, and what happens around the optimizer step."""

import pytest
import torch

from mtlcli.config import resolve
from mtlcli.training.batching import collate
from mtlcli.training.trainer import Run


def make_run(backbone_dir, tmp_path, ner_file, qa_file, *settings, events=None):
    config = resolve(
        [],
        [
            f'backbone="{backbone_dir}"',
            f'output_dir="{tmp_path / "run"}"',
            'cache_dir=""',
            "precision=fp32",
            "batch_size=2",
            "lr=1e-3",
            "max_length=32",
            "qa_max_length=48",
            "doc_stride=16",
            "head_dropout=0.0",
            "encoder_dropout=0.0",
            "warmup_ratio=0.0",
            f'ner_train="{ner_file}"',
            f'qa_train="{qa_file}"',
            *settings,
        ],
    )
    return Run(
        config,
        (lambda kind, data: events.append((kind, data))) if events is not None else (lambda *a: None),
        overwrite=True,
        resume=False,
    )


def batch_loss(run, task, rows):
    stream = run.streams[task]
    batch = collate(stream.features, rows, task, run.pad_id)
    with torch.no_grad():
        return run.core(task, **batch)["loss"].item()


def test_train_step_trains_one_batch_per_task_and_reports_it(backbone_dir, tmp_path, ner_file, qa_file):
    run = make_run(backbone_dir, tmp_path, ner_file, qa_file, "step_mode=joint")
    rows = {"ner": [0, 1], "qa": [2]}
    expected = {task: batch_loss(run, task, r) for task, r in rows.items()}
    before = run.core.heads["ner"].weight.detach().clone()
    stats = run.train_step(("ner", "qa"), rows=rows)
    assert (run.step, run.global_step) == (1, 1)
    assert set(stats) == {"ner", "qa"}
    for task, r in rows.items():
        assert stats[task]["loss"] == pytest.approx(expected[task], rel=1e-5)  # no dropout: the same loss
        assert stats[task]["examples"] == len(r)
        assert stats[task]["tokens"] == sum(len(run.streams[task].features.input_ids[i]) for i in r)
    assert not torch.equal(run.core.heads["ner"].weight, before)  # grad_accum 1: the optimizer stepped
    assert run.streams["ner"].passes == 0  # given rows: the stream is left alone
    stats = run.train_step(("ner",))  # no rows: the task's own stream
    assert run.streams["ner"].passes == 1 and set(stats) == {"ner"} and run.global_step == 2
    assert run.epoch_totals["loss_counts"] == {"ner": 2, "qa": 1}


def test_every_labelled_ner_token_weighs_the_same_in_short_and_long_batches(backbone_dir, tmp_path, ner_file, qa_file):
    run = make_run(backbone_dir, tmp_path, ner_file, qa_file)
    features = run.streams["ner"].features
    rows = list(range(len(features)))
    labelled = [len(features.labels[r]) - features.labels[r].count(-100) for r in rows]
    assert len(set(labelled)) > 1  # sentences of different lengths
    # one batch of every row, and a pass of one-row batches: both are the mean loss over all labelled tokens
    # (a plain per-batch mean would give a one-word sentence the weight of a long one)
    one_batch = batch_loss(run, "ner", rows)
    assert sum(batch_loss(run, "ner", [r]) for r in rows) / len(rows) == pytest.approx(one_batch, rel=1e-4)


def test_the_loop_steps_through_train_step(backbone_dir, tmp_path, ner_file, qa_file):
    run = make_run(backbone_dir, tmp_path, ner_file, qa_file, "epochs=1")
    calls = []
    step = run.train_step
    run.train_step = lambda tasks, rows=None, last=False: calls.append(tasks) or step(tasks, rows, last)
    run.fit()
    assert len(calls) == run.steps_per_epoch and run.global_step == run.steps_per_epoch


def test_runs_with_different_precisions_in_one_process_need_no_private_accelerate_api(
    backbone_dir, tmp_path, ner_file, qa_file, monkeypatch
):
    from accelerate.state import AcceleratorState

    def private(*args, **kwargs):
        raise AssertionError("AcceleratorState._reset_state is private accelerate API")

    monkeypatch.setattr(AcceleratorState, "_reset_state", staticmethod(private))
    x, w = torch.randn(2, 4), torch.randn(3, 4)
    for precision, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32), ("bf16", torch.bfloat16)):
        run = make_run(backbone_dir, tmp_path / precision, ner_file, qa_file, f"precision={precision}")
        with run.autocast():
            assert torch.nn.functional.linear(x, w).dtype == dtype
        assert run.train_step(("ner",))["ner"]["loss"] > 0


def record_gradients_at_the_optimizer_step(run, params):
    """The gradients the optimizer steps with (after fp16 unscaling), flattened, one entry per step."""
    seen = []

    def record(optimizer, args, kwargs):
        seen.append(torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]))

    run.optimizer.optimizer.register_step_pre_hook(record)
    return seen


def test_pcgrad_correction_survives_the_fp16_loss_scale(backbone_dir, tmp_path, ner_file, qa_file):
    from mtlcli.training.weighting import pcgrad, task_gradients

    run = make_run(backbone_dir, tmp_path, ner_file, qa_file, "step_mode=joint", "pcgrad=true", "max_grad_norm=0")
    # fp16 AMP needs a GPU; its GradScaler works the same on a CPU
    run.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    rows = {"ner": [0, 1], "qa": [0, 1]}
    shared = [p for p in run.core.encoder.parameters() if p.requires_grad]
    losses = {
        task: run.core(task, **collate(run.streams[task].features, r, task, run.pad_id))["loss"]
        for task, r in rows.items()
    }
    grads = task_gradients(losses, shared)
    if torch.dot(grads["ner"], grads["qa"]) > 0:  # the tiny model's tasks may agree: a negative weight makes
        run.weighting.lambdas["qa"] = -1.0  # them conflict, so that PCGrad changes their sum
        grads["qa"] = -grads["qa"]
    assert torch.dot(grads["ner"], grads["qa"]) < 0
    expected = pcgrad(grads, torch.Generator().set_state(run.pcgrad_rng.get_state()))
    seen = record_gradients_at_the_optimizer_step(run, shared)
    run.train_step(("ner", "qa"), rows=rows, last=True)
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], expected, rtol=1e-4, atol=1e-7)


def test_a_skipped_fp16_step_leaves_the_learned_task_weights_alone(backbone_dir, tmp_path, ner_file, qa_file):
    run = make_run(backbone_dir, tmp_path, ner_file, qa_file, "weighting=uncertainty")
    run.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    overflow = run.core.heads["ner"].bias.register_hook(lambda grad: grad * float("inf"))  # what fp16 overflow gives
    log_vars = {t: p.detach().clone() for t, p in run.weighting.log_vars.items()}
    head = run.core.heads["ner"].weight.detach().clone()
    run.train_step(("ner",), rows={"ner": [0, 1]}, last=True)
    assert run.scaler.get_scale() == 2.0**9  # the scaler saw the overflow and skipped the step
    assert torch.equal(run.core.heads["ner"].weight, head) and run.scheduler.last_epoch == 0
    for task, value in log_vars.items():
        assert torch.equal(run.weighting.log_vars[task].detach(), value)  # not stepped ...
        assert run.weighting.log_vars[task].grad is None  # ... and nothing left for the next step
    overflow.remove()
    run.train_step(("ner",), rows={"ner": [0, 1]}, last=True)
    assert not torch.equal(run.weighting.log_vars["ner"].detach(), log_vars["ner"])  # a good step moves them


@pytest.mark.parametrize(
    "settings, warned",
    [(("epochs=2",), True), (("epochs=1",), True), (("epochs=3",), False), (("epochs=2", "dwa_period=4"), False)],
)
def test_dwa_over_too_few_epochs_says_its_weights_stay_at_one(
    backbone_dir, tmp_path, ner_file, qa_file, settings, warned
):
    events = []
    make_run(backbone_dir, tmp_path, ner_file, qa_file, "weighting=dwa", *settings, events=events)
    messages = [data["message"] for kind, data in events if kind == "warning"]
    assert bool(messages) == warned
    if warned:
        assert "dwa_period" in messages[0] and "epoch" in messages[0]
