import math

import pytest
import torch
from torch import nn

from mtlcli.config import resolve
from mtlcli.errors import InputError
from mtlcli.training.weighting import DynamicWeightAverage, GradNorm, Uncertainty, pcgrad, pcgrad_projections


def regression_tasks(noise: dict[str, float], steps: int, weighting, seed: int = 0):
    """Two regression tasks on a shared layer, each with its own Gaussian noise."""
    torch.manual_seed(seed)
    shared = nn.Linear(4, 8)
    heads = nn.ModuleDict({t: nn.Linear(8, 1) for t in noise})
    true = {t: torch.randn(4, 1) for t in noise}
    optimizer = torch.optim.Adam(list(shared.parameters()) + list(heads.parameters()), lr=0.01)
    for _ in range(steps):
        x = torch.randn(64, 4)
        losses = {
            t: nn.functional.mse_loss(heads[t](shared(x)), x @ true[t] + sigma * torch.randn(64, 1))
            for t, sigma in noise.items()
        }
        total = weighting.combine(losses, shared.weight)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        weighting.step()
    return shared, heads, losses


def test_uncertainty_weights_converge_to_inverse_noise():
    noise = {"a": 0.5, "b": 2.0}
    weighting = Uncertainty(list(noise), {"a": 1, "b": 1}, lr=0.02)
    regression_tasks(noise, 1500, weighting)
    weights = weighting.weights()
    # at the optimum exp(s_t) = MSE_t ≈ σ_t², so the weight ½·exp(−s_t) ≈ 1/(2σ_t²)
    for task, sigma in noise.items():
        assert weights[task] == pytest.approx(1 / (2 * sigma**2), rel=0.25)
    assert weights["a"] / weights["b"] == pytest.approx(16, rel=0.3)


def test_gradnorm_equalises_gradient_norms():
    noise = {"small": 0.1, "large": 0.1}
    torch.manual_seed(1)
    weighting = GradNorm(list(noise), {"small": 1, "large": 1}, lr=0.05, alpha=0.0)
    shared = nn.Linear(4, 8)
    heads = nn.ModuleDict({t: nn.Linear(8, 1) for t in noise})
    scale = {"small": 1.0, "large": 10.0}  # the second task's loss (and gradient) is 100× larger

    def norms():
        x = torch.randn(256, 4)
        losses = {
            t: nn.functional.mse_loss(heads[t](shared(x)) * scale[t], x.sum(1, keepdim=True) * scale[t]) for t in noise
        }
        return {
            t: torch.autograd.grad(weighting.task_weights[t] * losses[t], shared.weight, retain_graph=True)[0]
            .norm()
            .item()
            for t in noise
        }, losses

    before, _ = norms()
    for _ in range(300):
        _, losses = norms()
        weighting.combine(losses, shared.weight)
        weighting.step()  # only the task weights move here: the shared layer is fixed
    after, _ = norms()
    assert before["large"] / before["small"] > 50
    assert after["large"] / after["small"] == pytest.approx(1, rel=0.2)
    assert sum(weighting.weights().values()) == pytest.approx(2)


def test_gradnorm_accumulates_its_gradients_over_micro_steps():
    """With grad_accum > 1 the weights step once per window: every micro-step's GradNorm gradient counts."""
    torch.manual_seed(0)
    shared = nn.Linear(4, 8)
    heads = nn.ModuleDict({t: nn.Linear(8, 1) for t in ("a", "b")})

    def losses():
        x = torch.randn(16, 4)
        return {
            t: nn.functional.mse_loss(heads[t](shared(x)), x.sum(1, keepdim=True) * (i + 1))
            for i, t in enumerate(("a", "b"))
        }

    first, second = losses(), losses()
    weighting = GradNorm(["a", "b"], {"a": 1, "b": 1})
    weighting.combine(first, shared.weight)
    alone = {t: p.grad.clone() for t, p in weighting.task_weights.items()}
    other = GradNorm(["a", "b"], {"a": 1, "b": 1})
    other.initial_losses.copy_(weighting.initial_losses)
    other.combine(second, shared.weight)
    weighting.combine(second, shared.weight)
    for t, p in weighting.task_weights.items():
        assert alone[t] != 0 and other.task_weights[t].grad != 0
        torch.testing.assert_close(p.grad, alone[t] + other.task_weights[t].grad)


def test_dwa_follows_its_formula():
    dwa = DynamicWeightAverage(["ner", "qa"], {"ner": 1, "qa": 1}, temperature=2.0)
    assert dwa.weights() == {"ner": 1.0, "qa": 1.0}
    dwa.end_epoch({"ner": 1.0, "qa": 4.0})
    assert dwa.weights() == {"ner": 1.0, "qa": 1.0}  # needs two epochs of history
    dwa.end_epoch({"ner": 0.5, "qa": 4.0})
    e_ner, e_qa = math.exp(0.5 / 2), math.exp(1.0 / 2)
    assert dwa.weights()["qa"] == pytest.approx(2 * e_qa / (e_ner + e_qa))  # the slower task gets more


def test_dwa_over_step_windows_follows_the_same_formula_and_resumes():
    dwa = DynamicWeightAverage(["ner", "qa"], {"ner": 1, "qa": 1}, temperature=2.0, period=2)
    for losses in ({"ner": 1.5}, {"ner": 0.5, "qa": 4.0}, {"ner": 0.5, "qa": 4.0}):  # window 1: ner 1.0, qa 4.0
        dwa.observe(losses)
    dwa.end_epoch({"ner": 9.0, "qa": 9.0})  # with a period, epochs do not count
    assert dwa.weights() == {"ner": 1.0, "qa": 1.0}
    again = DynamicWeightAverage(["ner", "qa"], {"ner": 1, "qa": 1}, temperature=2.0, period=2)
    again.load_extra_state(dwa.extra_state())  # a resumed run carries the half-filled window on
    again.observe({"qa": 4.0})  # window 2: ner 0.5, qa 4.0
    e_ner, e_qa = math.exp(0.5 / 2), math.exp(1.0 / 2)
    assert again.weights()["qa"] == pytest.approx(2 * e_qa / (e_ner + e_qa))
    waiting = DynamicWeightAverage(["ner", "qa"], {"ner": 1, "qa": 1}, period=1)
    waiting.observe({"ner": 1.0})  # a window closes only once every task has a loss in it
    assert waiting.window["steps"] == 1 and waiting.history == []
    waiting.observe({"qa": 2.0})
    assert waiting.history == [{"ner": 1.0, "qa": 2.0}]


def test_pcgrad_projects_conflicting_gradients():
    g = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([-1.0, 1.0])}  # a·b = −1: they conflict
    projected = pcgrad_projections(g, torch.Generator().manual_seed(0))
    # by hand: a − (a·b/|b|²)·b = (1, 0) + ½·(−1, 1); b − (b·a/|a|²)·a = (−1, 1) + (1, 0)
    assert torch.allclose(projected["a"], torch.tensor([0.5, 0.5]))
    assert torch.allclose(projected["b"], torch.tensor([0.0, 1.0]))
    assert torch.dot(projected["a"], g["b"]) >= 0 and torch.dot(projected["b"], g["a"]) >= 0  # conflict gone
    assert torch.allclose(pcgrad(g, torch.Generator().manual_seed(0)), torch.tensor([0.5, 1.5]))
    agreeing = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([1.0, 1.0])}
    assert torch.allclose(pcgrad(agreeing, torch.Generator()), torch.tensor([2.0, 1.0]))


def test_joint_only_options_are_config_errors():
    for setting in ("weighting=gradnorm", "pcgrad=true", "interference_every=5"):
        with pytest.raises(InputError, match="step_mode=joint"):
            resolve([], [setting])
    assert resolve([], ["weighting=gradnorm", "step_mode=joint"]).weighting == "gradnorm"
    with pytest.raises(InputError, match="weighting"):
        resolve([], ["weighting=magic"])


@pytest.mark.parametrize("weighting", ["uncertainty", "gradnorm", "dwa"])
def test_strategies_train_and_log_their_weights(backbone_dir, tmp_path, ner_file, qa_file, weighting):
    import json

    from mtlcli.training.trainer import train

    run = tmp_path / "run"
    config = resolve(
        [],
        [
            f'backbone="{backbone_dir}"',
            f'output_dir="{run}"',
            'cache_dir=""',
            f'ner_train="{ner_file}"',
            f'qa_train="{qa_file}"',
            "qa_max_length=48",
            "doc_stride=16",
            "epochs=3",
            "batch_size=4",
            "step_mode=joint",
            f"weighting={weighting}",
            "pcgrad=true",
            "interference_every=2",
        ],
    )
    train(config)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["type"] == "step"]
    assert len(steps) == 3 * 2 and all(set(r["weights"]) == {"ner", "qa"} for r in steps)
    interference = [r for r in records if r["type"] == "interference"]
    assert interference and all(-1 <= r["cosine"]["ner/qa"] <= 1 for r in interference)
    epochs = [r for r in records if r["type"] == "epoch"]
    assert epochs[0]["task_mix"] == {"ner": 2, "qa": 2}
    if weighting != "dwa":
        assert steps[0]["weights"] != steps[-1]["weights"]  # learned weights moved
    else:
        assert epochs[-1]["weights"] != {"ner": 1.0, "qa": 1.0}  # set from the first two epochs' losses
