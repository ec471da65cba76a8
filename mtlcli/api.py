"""The Python API for notebooks: the same engine the CLI calls.

import mtlcli.api as mtl
result = mtl.train("demo", epochs=1)                 # presets + settings, as `mtl train`
model = mtl.load("runs/demo/best-ner")
model.entities(["Apple Inc. was founded by Steve Jobs in California."])
model.answer("Who founded Apple?", "Apple Inc. was founded by Steve Jobs in California.")
model.classify(["A man plays a guitar."], text_pairs=["Someone makes music."])   # a model trained on pairs
"""

from __future__ import annotations

from pathlib import Path

from .config import resolve
from .inference.predictor import Predictor, text_items
from .inputs import TextItem


class Model:
    """A trained mtl model directory, loaded once; predictions as plain Python objects (Entity, Span, dicts).

    A thin layer over the predictor of the predict commands (mtlcli.inference.predictor), fp32 by default."""

    def __init__(self, directory: str | Path, device: str = "cpu", precision: str = "fp32"):
        self.predictor = Predictor(directory, device=device, precision=precision)
        self.tasks = self.predictor.spec.tasks

    def entities(self, texts: list[str], batch_size: int = 32) -> list[list]:
        results = self.predictor.predict("ner", [TextItem(t) for t in texts], batch_size)
        return [result.entities for result in results]

    def answer(self, question: str, context: str, n_best: int = 1, null_threshold: float | None = None) -> list:
        """The n best answer Spans; "" first where the model abstains (`null_threshold` as predict-qa's)."""
        return self.predictor.qa([question], [context], n_best=n_best, null_threshold=null_threshold)[0]

    def classify(
        self, texts: list[str], batch_size: int = 32, text_pairs: list[str] | None = None
    ) -> list[dict[str, float]]:
        """Label probabilities per text, or per sentence pair (texts[i], text_pairs[i]), most likely first."""
        return self.predictor.predict("cls", text_items(texts, text_pairs), batch_size)


def load(directory: str | Path, device: str = "cpu", precision: str = "fp32") -> Model:
    return Model(directory, device, precision)


def train(*presets: str, on_event=None, overwrite: bool = False, **settings):
    """Train from presets (names or TOML paths) and config keys, e.g. train("demo", epochs=1, lr=1e-4)."""
    from .training.trainer import train as run

    config = resolve(list(presets), overrides=settings)
    return run(config, on_event or (lambda kind, data: None), overwrite=overwrite)
