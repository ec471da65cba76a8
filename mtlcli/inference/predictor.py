"""A model directory loaded once for predictions: device, precision, optional int8 weights, batch invariance.

    predictor = Predictor("runs/demo/last")
    predictor.predict("ner", [TextItem("Apple was founded by Steve Jobs.")])   # any task of the registry
    predictor.ner(["Apple was founded by Steve Jobs."])                       # the built-in tasks, shorter

Each task (mtlcli.tasks) decodes its own outputs; the predictor only loads, prepares and dispatches.
"""

from __future__ import annotations

import contextlib

from ..devices import autocast_for, resolve_device, resolve_precision
from ..errors import InputError
from ..inputs import QaItem, TextItem

# inputs per forward pass unless the caller says otherwise (QA counts windows of up to 384 tokens)
DEFAULT_BATCH = {"qa": 32}
DEFAULT_BATCH_SIZE = 128


def quantize_int8(model):
    """Dynamic int8 quantization of the encoder's Linear layers, per output channel (the heads stay fp32)."""
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # deprecated in favour of torchao, which is not a dependency
        warnings.simplefilter("ignore")
        model.encoder = quantize_dynamic(
            model.encoder, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        )
    return model


def text_items(texts: list[str], text_pairs: list[str] | None = None) -> list[TextItem]:
    """TextItems of texts, or of sentence pairs when `text_pairs` gives each text its second text."""
    if text_pairs is None:
        return [TextItem(text) for text in texts]
    if len(text_pairs) != len(texts):
        raise InputError(f"{len(texts)} texts but {len(text_pairs)} text pairs: give one pair text per text")
    return [TextItem(text, text_pair=pair) for text, pair in zip(texts, text_pairs)]


def missing_task_message(task: str, have: list[str]) -> str:
    from .. import tasks

    names = ", ".join(tasks.get(t).title for t in have) or "none"
    return f"this model has no {tasks.get(task).title} head (its tasks: {names})"


def load_onnx_export(directory, device: str, precision: str):
    """(model, tokenizer, precision) of an ONNX export, run by onnxruntime on the CPU: neither torch nor
    transformers is imported (the tokenizer is the export's tokenizer.json, run by `tokenizers`)."""
    from .fast_tokenizer import FastTokenizer
    from .onnx_model import OnnxModel

    if device not in ("auto", "cpu"):
        raise InputError(f"{directory} is an ONNX export, run by onnxruntime on the CPU: use --device cpu or auto")
    quantized = OnnxModel.quantization(directory)
    if precision not in ("auto", "fp32"):
        raise InputError(
            f"{directory} is an ONNX export with {quantized or 'fp32'} weights: --precision {precision} "
            "does not apply (export with --quantize int8 for int8)"
        )
    return OnnxModel(directory), FastTokenizer(directory), quantized or "fp32"


class Predictor:
    """A model directory loaded once, answering any number of inputs in length-sorted batches.

    Batch-invariant by default (mtlcli.inference.invariant): the results are bitwise the same with any batch
    size. Default batch sizes: 128 texts for NER and classification, 32 windows for QA."""

    def __init__(
        self,
        directory,
        device: str = "auto",
        precision: str = "auto",
        quantize: bool = False,
        batch_size: int | None = None,
        batch_invariant: bool = True,
        block_rows: int | None = None,
    ):
        from .onnx_model import is_onnx_export

        self.batch_size = batch_size
        self.batch_invariant = batch_invariant
        if is_onnx_export(directory):
            if quantize:
                raise InputError(
                    "--quantize quantizes a PyTorch model; an ONNX export is quantized when exported "
                    "(mtl export --format onnx --quantize int8)"
                )
            self.model, self.tokenizer, self.precision = load_onnx_export(directory, device, precision)
            self.device, self.quantized, self.autocast = "cpu", self.precision == "int8", contextlib.nullcontext
            self.spec = self.model.spec
            return
        from ..model import load_model
        from .invariant import BLOCK_ROWS, prepare_for_inference

        self.device = resolve_device(device)
        if quantize and self.device != "cpu":
            raise InputError("--quantize (dynamic int8) runs on the CPU only: add --device cpu")
        self.precision = resolve_precision(precision, self.device, quantize)
        self.quantized = quantize
        model, self.tokenizer = load_model(directory, self.device, lean=True)
        if quantize:
            quantize_int8(model)
        # bitwise the same results with any batch size (with --quantize: the activation scales stay per batch)
        self.model = prepare_for_inference(model, batch_invariant, block_rows or BLOCK_ROWS)
        self.autocast = autocast_for(self.device, self.precision)
        self.spec = self.model.spec

    def require(self, task: str) -> None:
        if task not in self.spec.tasks:
            raise InputError(missing_task_message(task, self.spec.tasks))

    def predict(self, task: str, inputs: list, batch_size: int | None = None, **options) -> list:
        """The task's predictions for its input items (TextItem, QaItem, ...), in input order."""
        from .. import tasks

        self.require(task)
        batch_size = batch_size or self.batch_size or DEFAULT_BATCH.get(task, DEFAULT_BATCH_SIZE)
        return tasks.get(task).predict(
            self.model, self.tokenizer, inputs, batch_size, self.device, self.autocast, **options
        )

    def ner(self, texts: list[str], pretokenized: bool = False) -> list:
        """NerResult per text: entities with character offsets, and every word with its tag."""
        return self.predict("ner", [TextItem(t) for t in texts], pretokenized=pretokenized)

    def qa(
        self,
        questions: list[str],
        contexts: list[str],
        n_best: int = 1,
        max_answer_length: int | None = None,
        null_threshold: float | None = None,
    ):
        """The n best answer Spans per (question, context); the empty answer first where the null score beats the
        best span's by more than `null_threshold` (as predict-qa --null-threshold; None: the model's default)."""
        items = [QaItem(q, c) for q, c in zip(questions, contexts)]
        return self.predict(
            "qa", items, n_best=n_best, max_answer_length=max_answer_length, null_threshold=null_threshold
        )

    def cls(self, texts: list[str], text_pairs: list[str] | None = None) -> list[dict[str, float]]:
        """Probability of every label per text (or per pair texts[i], text_pairs[i]), most likely first."""
        return self.predict("cls", text_items(texts, text_pairs))
