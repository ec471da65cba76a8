"""Dynamic micro-batching: requests that arrive together are predicted together, on one inference worker.

The event loop only queues requests and gathers them; the predictions run on a single worker thread (the
model is not shared between threads, and torch uses every core for one batch anyway). A batch closes at
`max_batch` inputs, at `max_batch_tokens` tokens, or `max_wait_ms` after its first request, whichever comes
first. Requests with the same task and options are predicted in one call; the predictor is batch-invariant,
so a result never depends on what else was in the batch.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

# (task, items, predict options, record options) -> one JSON record per item
RunGroup = Callable[[str, list, dict, dict], list]


class QueueFull(Exception):
    """More inputs are waiting than the queue holds: the caller answers 429."""


@dataclass
class Job:
    task: str
    items: list
    predict_options: dict
    record_options: dict
    tokens: int
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)

    def group_key(self) -> tuple:
        return self.task, tuple(sorted(self.predict_options.items())), tuple(sorted(self.record_options.items()))


class MicroBatcher:
    def __init__(
        self,
        run_group: RunGroup,
        worker: ThreadPoolExecutor,
        max_batch: int,
        max_batch_tokens: int,
        max_wait_ms: float,
        max_queue: int,
        on_batch: Callable[[int], None] = lambda size: None,
    ):
        self.run_group, self.worker = run_group, worker
        self.max_batch, self.max_batch_tokens = max_batch, max_batch_tokens
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.waiting: collections.deque[Job] = collections.deque()
        self.queued_inputs = 0  # accepted and not answered yet: waiting, gathered or being predicted
        self._wake = asyncio.Event()

    def submit(self, task: str, items: list, predict_options: dict, record_options: dict, tokens: int):
        """A future of the records of `items`; QueueFull when the queue has no room for them."""
        if self.queued_inputs + len(items) > self.max_queue:
            raise QueueFull(f"{self.queued_inputs} inputs are waiting (at most {self.max_queue})")
        job = Job(task, items, predict_options, record_options, tokens, asyncio.get_running_loop().create_future())
        self.waiting.append(job)
        self.queued_inputs += len(items)
        self._wake.set()
        return job.future

    async def run(self) -> None:
        """Gather and run batches until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            try:
                await loop.run_in_executor(self.worker, self._run_batch, loop, batch)
            finally:
                self.queued_inputs -= sum(len(job.items) for job in batch)

    async def _next(self, timeout: float | None) -> Job | None:
        while not self.waiting:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return None
        return self.waiting[0]

    async def _gather(self) -> list[Job]:
        first = await self._next(None)
        deadline = first.queued_at + self.max_wait
        batch, inputs, tokens = [], 0, 0
        while True:
            job = await self._next(max(0.0, deadline - time.perf_counter()))
            if job is None:
                break
            if batch and (inputs + len(job.items) > self.max_batch or tokens + job.tokens > self.max_batch_tokens):
                break  # it opens the next batch
            self.waiting.popleft()
            if job.future.done():  # timed out or its client went away while it waited
                self.queued_inputs -= len(job.items)
                continue
            batch.append(job)
            inputs, tokens = inputs + len(job.items), tokens + job.tokens
            if inputs >= self.max_batch or tokens >= self.max_batch_tokens:
                break
        return batch

    def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[Job]) -> None:
        """On the worker thread: one predictor call per (task, options), results handed back to the loop."""
        if not batch:
            return
        self.on_batch(sum(len(job.items) for job in batch))
        groups: dict[tuple, list[Job]] = {}
        for job in batch:
            groups.setdefault(job.group_key(), []).append(job)
        for jobs in groups.values():
            first = jobs[0]
            items = [item for job in jobs for item in job.items]
            try:
                records = self.run_group(first.task, items, first.predict_options, first.record_options)
            except Exception as err:  # handed to each request of the group, which answers with a JSON error
                for job in jobs:
                    loop.call_soon_threadsafe(_settle, job.future, None, err)
                continue
            at = 0
            for job in jobs:
                loop.call_soon_threadsafe(_settle, job.future, records[at : at + len(job.items)], None)
                at += len(job.items)


def _settle(future: asyncio.Future, result, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
