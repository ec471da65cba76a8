"""What the routes of `mtl serve` share: the loaded model, its inference worker, the batcher and the metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import __version__, tasks
from ..errors import InputError
from ..spec import read_spec
from .batcher import MicroBatcher, QueueFull
from .metrics import ServeMetrics
from .schemas import ServeSettings


class RequestError(Exception):
    """A request the service refuses: answered with `status` and {"error": message}."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


RETRY_SOON = {"Retry-After": "1"}


class Service:
    def __init__(self, model_dir: str | Path, settings: ServeSettings | None = None):
        self.model_dir = Path(model_dir)
        self.settings = settings or ServeSettings()
        self.spec = read_spec(model_dir)  # a directory that is no model fails here, before anything listens
        self.predictor = None
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mtl-inference")
        self.metrics = ServeMetrics()
        self.batcher: MicroBatcher | None = None
        self.metrics.queue_inputs.set_function(lambda: self.batcher.queued_inputs if self.batcher else 0)

    @property
    def ready(self) -> bool:
        return self.predictor is not None

    def load(self) -> None:
        """Load the model and run each task once (the first call of a shape is the slow one)."""
        from ..inference.predictor import Predictor

        settings = self.settings
        if settings.threads:
            os.environ["MTL_THREADS"] = str(settings.threads)  # what an ONNX export's session reads
        predictor = Predictor(
            self.model_dir, device=settings.device, precision=settings.precision, quantize=settings.quantize
        )
        if settings.threads and "torch" in sys.modules:
            import torch

            torch.set_num_threads(settings.threads)
        for name in self.spec.tasks:
            task = tasks.get(name)
            model = task.request_model()
            items, predict_options, _ = task.request_inputs(model.model_validate(example_body(model)))
            predictor.predict(name, items, **predict_options)
        self.predictor = predictor

    def start(self) -> None:
        """On the running event loop: the batcher, whose batches run on the worker thread."""
        settings = self.settings
        self.batcher = MicroBatcher(
            self.run_group,
            self.worker,
            settings.max_batch,
            settings.max_batch_tokens,
            settings.max_wait_ms,
            settings.max_queue,
            on_batch=self.metrics.batch_inputs.observe,
        )

    def run_group(self, task: str, items: list, predict_options: dict, record_options: dict) -> list[dict]:
        from ..render_predictions import record

        results = self.predictor.predict(task, items, **predict_options)
        return [record(task, item, result, **record_options) for item, result in zip(items, results)]

    async def answer(self, task, body) -> dict:
        """{"results": [...]} of one request: its inputs join the next batch."""
        arrived = time.perf_counter()
        if not self.ready:
            raise RequestError(503, "the model is still loading", RETRY_SOON)
        self.check_limits(body)
        items, predict_options, record_options = task.request_inputs(body)
        try:
            future = self.batcher.submit(task.name, items, predict_options, record_options, self.tokens(items))
        except QueueFull as err:
            raise RequestError(429, f"the service is busy: {err}; retry later", RETRY_SOON) from None
        timeout = self.settings.timeout_s
        try:
            records = await asyncio.wait_for(future, max(0.0, timeout - (time.perf_counter() - arrived)))
        except TimeoutError:
            raise RequestError(503, f"no answer within {timeout:g} s; retry later", RETRY_SOON) from None
        except InputError as err:
            raise RequestError(422, str(err)) from None
        return {"results": records}

    def check_limits(self, body) -> None:
        """Inputs per request and characters per text (in every list of the body): 413/422 naming the field."""
        name = body.inputs_field
        count, limit = len(getattr(body, name)), self.settings.max_inputs
        if count > limit:
            raise RequestError(413, f"{name}: {count} inputs, at most {limit} per request")
        limit = self.settings.max_chars
        for name, values in body:
            for i, value in enumerate(values if isinstance(values, list) else ()):
                fields = (
                    [("", value)] if isinstance(value, str) else [(f".{k}", v) for k, v in value if isinstance(v, str)]
                )
                for suffix, text in fields:
                    if len(text) > limit:
                        raise RequestError(422, f"{name}[{i}]{suffix}: {len(text)} characters, at most {limit}")

    def tokens(self, items: list) -> int:
        """The tokens of the items' texts, which the batch's token budget counts."""
        texts = [value for item in items for key, value in vars(item).items() if key != "id" and isinstance(value, str)]
        return sum(len(ids) for ids in self.predictor.tokenizer(texts, add_special_tokens=False)["input_ids"])

    def info(self) -> dict:
        from ..render import entity_color
        from ..render_predictions import entity_types

        def task_info(name: str) -> dict:
            task, labels = tasks.get(name), self.spec.labels_of(name)
            found = {"name": name, "title": task.title, "route": f"/{name}", "labels": labels}
            if name == "ner":
                found["entity_colors"] = {kind: css_color(entity_color(kind)) for kind in entity_types(labels)}
            return found

        from ..inference.onnx_model import is_onnx_export

        return {
            "model": str(self.model_dir),
            "tasks": [task_info(name) for name in self.spec.tasks],
            "backbone": self.spec.backbone,
            "backend": "onnxruntime" if is_onnx_export(self.model_dir) else "torch",
            "device": getattr(self.predictor, "device", None),
            "precision": getattr(self.predictor, "precision", None),
            "ready": self.ready,
            "versions": versions(),
            "limits": self.settings.limits(),
        }


def example_body(model) -> dict:
    """The first example of a request model (also shown in the OpenAPI docs)."""
    return model.model_config["json_schema_extra"]["examples"][0]


def css_color(rich_name: str) -> str:
    """The CSS colour of a terminal colour name, as Rich's default terminal theme shows it."""
    from rich.color import Color

    return Color.parse(rich_name).get_truecolor().hex


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {"mtl": __version__, "python": platform.python_version()}
    for package in ("torch", "transformers", "onnxruntime", "fastapi", "uvicorn"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found
