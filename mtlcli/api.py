"""The Python API for notebooks: the same engine the CLI calls.

    import mtlcli.api as mtl
    result = mtl.train("demo", epochs=1)                 # presets + settings, as `mtl train`
    model = mtl.load("runs/demo/best-ner")
    model.entities(["Apple Inc. was founded by Steve Jobs in California."])
    model.answer("Who founded Apple?", "Apple Inc. was founded by Steve Jobs in California.")
"""

from __future__ import annotations

from pathlib import Path

from . import predict as _predict
from .config import resolve
from .model import load_model


class Model:
    """A trained mtl model directory, loaded once; predictions as plain Python objects."""

    def __init__(self, directory: str | Path, device: str = "cpu"):
        self.model, self.tokenizer = load_model(directory, device)
        self.device = device
        self.tasks = self.model.spec.tasks

    def entities(self, texts: list[str], batch_size: int = 32) -> list[list[_predict.Entity]]:
        return _predict.predict_ner(self.model, self.tokenizer, texts, batch_size, self.device)

    def answer(self, question: str, context: str, n_best: int = 1) -> list[_predict.Span]:
        return _predict.predict_qa(self.model, self.tokenizer, [question], [context], device=self.device, n_best=n_best)[0]

    def classify(self, texts: list[str], batch_size: int = 32) -> list[dict[str, float]]:
        return _predict.predict_cls(self.model, self.tokenizer, texts, batch_size, self.device)


def load(directory: str | Path, device: str = "cpu") -> Model:
    return Model(directory, device)


def train(*presets: str, on_event=None, overwrite: bool = False, **settings):
    """Train from presets (names or TOML paths) and config keys, e.g. train("demo", epochs=1, lr=1e-4)."""
    from .training.trainer import train as run

    config = resolve(list(presets), overrides=settings)
    return run(config, on_event or (lambda kind, data: None), overwrite=overwrite)
