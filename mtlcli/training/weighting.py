"""How the task losses of a step become one loss: static λ, uncertainty, GradNorm, DWA; and PCGrad.

- static: Σ λ_t·L_t (the training guide's `cls_loss + alpha * ner_loss`).
- uncertainty (Kendall et al. 2018): learned s_t = log σ_t², loss Σ ½·exp(−s_t)·L_t + ½·s_t, so a noisier
  task gets a smaller weight ½·exp(−s_t) (for a regression task it converges to 1/(2σ²)).
- gradnorm (Chen et al. 2018): learned w_t, pushed so that the norm of each task's weighted gradient on
  the last shared layer follows the average norm times its relative inverse training rate^α;
  Σ w_t stays the number of tasks. Needs every task's loss in a step: step_mode = joint.
- dwa (Liu et al. 2019): w_t = T·softmax(r_t / temperature) with r_t = L_t(epoch−1) / L_t(epoch−2)
  (or over windows of `dwa_period` steps).
The learned weights have their own small optimizer (they need a far larger rate than the encoder).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Weighting(nn.Module):
    def __init__(self, tasks: list[str], lambdas: dict[str, float], lr: float = 0.01):
        super().__init__()
        self.tasks = list(tasks)
        self.lambdas = dict(lambdas)
        self.lr = lr
        self.optimizer = None

    def _make_optimizer(self) -> None:
        params = [p for p in self.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=self.lr) if params else None

    def combine(self, losses: dict[str, torch.Tensor], shared: torch.Tensor | None = None) -> torch.Tensor:
        return sum(self.weights()[t] * loss for t, loss in losses.items())

    def weights(self) -> dict[str, float]:
        return {t: self.lambdas[t] for t in self.tasks}

    def step(self) -> None:
        """After the model's backward: update learned weights (gradients averaged over processes)."""
        if self.optimizer is None:
            return
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for param in self.parameters():
                if param.grad is not None:
                    torch.distributed.all_reduce(param.grad)
                    param.grad /= torch.distributed.get_world_size()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def observe(self, losses: dict[str, float]) -> None:
        """Each step's task losses (as numbers): step-window strategies (DWA with a period) update here."""

    def end_epoch(self, mean_losses: dict[str, float]) -> None:
        """Epoch-level strategies (DWA) update here."""

    def extra_state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()} if self.optimizer else {}

    def load_extra_state(self, state: dict) -> None:
        if self.optimizer and "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])


class Uncertainty(Weighting):
    def __init__(self, tasks, lambdas, lr=0.01):
        super().__init__(tasks, lambdas, lr)
        self.log_vars = nn.ParameterDict({t: nn.Parameter(torch.zeros(())) for t in self.tasks})
        self._make_optimizer()

    def combine(self, losses, shared=None):
        return sum(0.5 * torch.exp(-self.log_vars[t]) * loss + 0.5 * self.log_vars[t] for t, loss in losses.items())

    def weights(self):
        return {t: float(0.5 * torch.exp(-self.log_vars[t].detach())) for t in self.tasks}


class GradNorm(Weighting):
    def __init__(self, tasks, lambdas, lr=0.025, alpha: float = 1.5):
        super().__init__(tasks, lambdas, lr)
        self.alpha = alpha
        self.task_weights = nn.ParameterDict({t: nn.Parameter(torch.ones(())) for t in self.tasks})
        self.register_buffer("initial_losses", torch.zeros(len(self.tasks)))
        self._make_optimizer()

    def combine(self, losses, shared=None):
        weighted = {t: self.task_weights[t] * loss for t, loss in losses.items()}
        if shared is not None and self.training and len(losses) == len(self.tasks):
            self._gradnorm_gradients(losses, weighted, shared)
        # the model learns from the weighted sum; the weights learn only from the GradNorm objective
        return sum(self.task_weights[t].detach() * loss for t, loss in losses.items())

    def _gradnorm_gradients(self, losses, weighted, shared):
        current = torch.stack([losses[t].detach().float() for t in self.tasks])
        if not self.initial_losses.any():
            self.initial_losses.copy_(current)
        norms = torch.stack(
            [
                torch.autograd.grad(weighted[t], shared, retain_graph=True, create_graph=True)[0].float().norm()
                for t in self.tasks
            ]
        )
        ratios = current / self.initial_losses.clamp_min(1e-12)
        inverse_rate = ratios / ratios.mean()
        target = (norms.mean() * inverse_rate**self.alpha).detach()
        objective = (norms - target).abs().sum()
        grads = torch.autograd.grad(objective, [self.task_weights[t] for t in self.tasks], retain_graph=True)
        for t, grad in zip(self.tasks, grads):  # accumulated like .grad: a grad_accum window steps once
            weight = self.task_weights[t]
            weight.grad = grad if weight.grad is None else weight.grad + grad

    def step(self):
        super().step()
        with torch.no_grad():  # renormalise: Σ w_t = number of tasks, weights stay positive
            values = torch.stack([self.task_weights[t] for t in self.tasks]).clamp_min(1e-3)
            values = values * len(self.tasks) / values.sum()
            for t, value in zip(self.tasks, values):
                self.task_weights[t].copy_(value)

    def weights(self):
        return {t: float(self.task_weights[t].detach()) for t in self.tasks}


class DynamicWeightAverage(Weighting):
    """Weights from the ratio of each task's last two mean losses, over epochs (the paper) or, with
    `period` > 0, over windows of that many steps (a short run has too few epochs for the ratio)."""

    def __init__(self, tasks, lambdas, temperature: float = 2.0, period: int = 0):
        super().__init__(tasks, lambdas)
        self.temperature, self.period = temperature, period
        self.history: list[dict[str, float]] = []
        self.current = {t: 1.0 for t in self.tasks}
        self.window = {"steps": 0, "sums": {}, "counts": {}}

    def weights(self):
        return dict(self.current)

    def observe(self, losses):
        if not self.period:
            return
        window = self.window
        window["steps"] += 1
        for task, loss in losses.items():
            window["sums"][task] = window["sums"].get(task, 0.0) + loss
            window["counts"][task] = window["counts"].get(task, 0) + 1
        # a window closes after `period` steps once every task has a loss in it (sampled steps may skip one)
        if window["steps"] >= self.period and all(t in window["counts"] for t in self.tasks):
            self._update({t: window["sums"][t] / window["counts"][t] for t in window["sums"]})
            self.window = {"steps": 0, "sums": {}, "counts": {}}

    def end_epoch(self, mean_losses):
        if not self.period:
            self._update(mean_losses)

    def _update(self, mean_losses):
        self.history = (self.history + [dict(mean_losses)])[-2:]
        if len(self.history) == 2 and all(t in h for h in self.history for t in self.tasks):
            rates = {t: self.history[1][t] / max(self.history[0][t], 1e-12) for t in self.tasks}
            exps = {t: math.exp(rates[t] / self.temperature) for t in self.tasks}
            total = sum(exps.values())
            self.current = {t: len(self.tasks) * exps[t] / total for t in self.tasks}

    def extra_state(self):
        return {"history": self.history, "current": self.current, "window": self.window}

    def load_extra_state(self, state):
        self.history, self.current = state.get("history", []), state.get("current", self.current)
        self.window = state.get("window", self.window)


def make_weighting(
    name: str,
    tasks: list[str],
    lambdas: dict[str, float],
    lr: float = 0.025,
    gradnorm_alpha: float = 1.5,
    dwa_temperature: float = 2.0,
    dwa_period: int = 0,
) -> Weighting:
    if name == "uncertainty":
        return Uncertainty(tasks, lambdas, lr)
    if name == "gradnorm":
        return GradNorm(tasks, lambdas, lr, gradnorm_alpha)
    if name == "dwa":
        return DynamicWeightAverage(tasks, lambdas, dwa_temperature, dwa_period)
    return Weighting(tasks, lambdas)


def last_shared_weight(encoder: nn.Module) -> torch.Tensor:
    """GradNorm's 'last shared layer': the last trainable matrix of the encoder that the heads see
    (the pooler is skipped: no head uses it)."""
    private = ("pooler", ".lora_")  # no head reads the pooler; a task adapter (mtlcli.adapters) is not shared
    matrices = [
        p
        for name, p in encoder.named_parameters()
        if p.ndim == 2 and p.requires_grad and not any(word in name for word in private)
    ]
    return matrices[-1]


def task_gradients(losses: dict[str, torch.Tensor], params: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each task's gradient on the given (shared) parameters, flattened."""
    grads = {}
    for task, loss in losses.items():
        parts = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        grads[task] = torch.cat(
            [(g if g is not None else torch.zeros_like(p)).reshape(-1).float() for g, p in zip(parts, params)]
        )
    return grads


def gradient_cosines(grads: dict[str, torch.Tensor]) -> dict[str, float]:
    tasks = list(grads)
    return {
        f"{a}/{b}": float(torch.nn.functional.cosine_similarity(grads[a], grads[b], dim=0))
        for i, a in enumerate(tasks)
        for b in tasks[i + 1 :]
    }


def pcgrad_projections(grads: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
    """PCGrad (Yu et al. 2020): each task gradient projected off the others it conflicts with, in random order."""
    tasks = list(grads)
    projected = {}
    for task in tasks:
        g = grads[task].clone()
        others = [t for t in tasks if t != task]
        for index in torch.randperm(len(others), generator=generator).tolist():
            other = grads[others[index]]
            dot = torch.dot(g, other)
            if dot < 0:
                g -= dot / other.dot(other).clamp_min(1e-20) * other
        projected[task] = g
    return projected


def pcgrad(grads: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
    """The sum of the PCGrad projections: the step's shared gradient."""
    return torch.stack(list(pcgrad_projections(grads, generator).values())).sum(0)


def apply_pcgrad(
    grads: dict[str, torch.Tensor], shared: list, generator: torch.Generator, grad_accum: int, scaler
) -> None:
    """Replace the summed shared gradient in `.grad` by PCGrad's (its share of a grad_accum window). `.grad`
    holds the fp16-scaled gradient (unscaled only before the optimizer step), so the correction gets that scale."""
    correction = (pcgrad(grads, generator) - torch.stack(list(grads.values())).sum(0)) / grad_accum
    if scaler:
        correction = scaler.scale(correction)
    offset = 0
    for param in shared:
        size = param.numel()
        if param.grad is not None:  # None: unused by every task (the pooler), its correction is 0
            param.grad += correction[offset : offset + size].view_as(param).to(param.grad.dtype)
        offset += size
