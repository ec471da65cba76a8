"""Each task's endless stream of training batches."""

from __future__ import annotations

import math
import random

from .. import tasks
from ..config import TrainConfig
from .batching import training_batches


class TaskStream:
    """Endless batches of one task: every pass over its data is a fresh shuffle from (seed, task, pass).

    With several processes each global batch (batch_size × processes rows) is split between the ranks,
    so a run on N processes sees the same examples per step as one process with N times the batch."""

    def __init__(self, task: str, features, config: TrainConfig, rank: int = 0, world: int = 1, packs: bool = False):
        self.task, self.features, self.config = task, features, config
        self.rank, self.world = rank, world
        # packed batches (mtlcli.training.packing) are shuffled ones: little padding without grouping by length
        self.packed = packs and config.pack_sequences and tasks.get(task).per_token
        self.passes, self.queue = 0, []

    def batches_per_pass(self) -> int:
        return math.ceil(len(self.features) / (self.config.batch_size * self.world))

    def next_rows(self) -> list[int]:
        if not self.queue:
            rng = random.Random(f"{self.config.seed}/{self.task}/{self.passes}")
            size = self.config.batch_size * self.world
            grouped = self.config.group_by_length and not self.packed
            batches = training_batches(self.features.lengths(), size, rng, grouped)
            self.queue = [batch[self.rank :: self.world] or batch[:1] for batch in batches]
            self.passes += 1
        return self.queue.pop(0)

    def state(self) -> dict:
        return {"passes": self.passes, "queue": self.queue}

    def restore(self, state: dict) -> None:
        self.passes, self.queue = state["passes"], state["queue"]
