"""Which task(s) each optimizer step of an epoch trains.

`sampled` mode: one task per step. round_robin cycles through the tasks that still have batches;
proportional draws without replacement (so p ∝ batches); temperature:T draws with p ∝ n^(1/T);
annealed (Stickland & Murray 2019) uses p ∝ n^α with α going from 1 to 0.2 over the epochs.
With temperature/annealed sampling a task that runs out is reshuffled and the epoch ends after as
many steps as all tasks have batches together. `joint` mode: every task at every step, for as many
steps as the largest task has batches.
"""

from __future__ import annotations

import random

from ..config import parse_sampling


def task_probabilities(batches: dict[str, int], sampling: str, epoch: int, epochs: int) -> dict[str, float]:
    name, temperature = parse_sampling(sampling)
    if name == "annealed":
        alpha = 1.0 - 0.8 * epoch / max(epochs - 1, 1)
    elif name == "temperature":
        alpha = 1.0 / temperature
    else:
        alpha = 1.0
    weights = {task: n**alpha for task, n in batches.items() if n}
    total = sum(weights.values())
    return {task: w / total for task, w in weights.items()}


def epoch_schedule(
    batches: dict[str, int], step_mode: str, sampling: str, epoch: int, epochs: int, rng: random.Random
) -> list[tuple[str, ...]]:
    tasks = [task for task, n in batches.items() if n]
    if step_mode == "joint":
        return [tuple(tasks)] * max((batches[t] for t in tasks), default=0)
    name, _ = parse_sampling(sampling)
    total = sum(batches[t] for t in tasks)
    if name == "round_robin":
        left = dict(batches)
        schedule = []
        while len(schedule) < total:
            for task in tasks:
                if left[task]:
                    schedule.append((task,))
                    left[task] -= 1
        return schedule
    if name == "proportional":
        schedule = [(task,) for task in tasks for _ in range(batches[task])]
        rng.shuffle(schedule)
        return schedule
    probabilities = task_probabilities(batches, sampling, epoch, epochs)
    drawn = rng.choices(list(probabilities), weights=list(probabilities.values()), k=total)
    return [(task,) for task in drawn]
