"""`mtl export --format onnx`: the shared encoder and every head of an mtl model as ONE ONNX graph.

Inputs input_ids and attention_mask (and token_type_ids for a model trained with segment ids), int64
[batch, sequence], both axes dynamic; outputs "{task}.{output}" (e.g. "qa.start_logits"), float32. The graph
is made with torch's own exporter, checked against PyTorch with ONNX Runtime on a few random shapes, then
optimized with ONNX Runtime's transformer fusions where they apply (kept only if it still matches) and,
on request, quantized to dynamic int8 weights. The directory also holds the tokenizer and mtl's config.json
with "format": "onnx" and this report, so that mtl recognises it (mtlcli.inference.onnx_model).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import tasks
from ..errors import InputError, WorkError
from ..inference.onnx_model import MISSING_EXTRA, ONNX_FILE, ONNX_FORMAT
from ..spec import CONFIG_FILE

OPSET = 18  # LayerNormalization (17) is one op, which the fusions expect; ONNX Runtime 1.16+ runs it
MATCH = 1e-4  # the optimized graph must reproduce PyTorch this closely (fp32 logits)
EXPORT_LIMIT = 1e-3  # worse than this, the plain export is wrong, not just rounded differently
OPTIMIZABLE = ("bert", "distilbert", "roberta")  # backbone model types onnxruntime's "bert" fusions know
FUSED = (
    "Attention",
    "MultiHeadAttention",
    "LayerNormalization",
    "SkipLayerNormalization",
    "EmbedLayerNormalization",
    "Gelu",
    "FastGelu",
    "BiasGelu",
)
CHECK_SHAPES = ((1, 5), (3, 17), (3, 40), (1, 40))  # (batch, length): odd sizes, so that nothing is specialized


def require_onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise InputError(MISSING_EXTRA) from None
    return onnx, onnxruntime


def output_names(spec) -> list[str]:
    return [f"{task}.{name}" for task in spec.tasks for name in tasks.get(task).output_names]


def input_names(spec) -> list[str]:
    return ["input_ids", "attention_mask"] + (["token_type_ids"] if getattr(spec, "segment_ids", False) else [])


def all_heads(model):
    """The model as one module: the encoder once, then every head on its output (no targets: logits only)."""
    import torch

    spec = model.spec
    segments = getattr(spec, "segment_ids", False)

    class AllHeads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            hidden = self.model.encode(input_ids, attention_mask, token_type_ids if segments else None)
            outputs = []
            for task in spec.tasks:
                out = self.model.head_forward(task, hidden, attention_mask)
                outputs += [out[name].float() for name in tasks.get(task).output_names]
            return tuple(outputs)

    return AllHeads().eval()


def random_batch(spec, batch: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random token ids, right-padded: the first row full length, the others shorter (padding exercised)."""
    config = spec.backbone_config
    pad_id = config.get("pad_token_id") or 0
    lengths = [length] + [int(n) for n in rng.integers(1, length + 1, size=batch - 1)]
    ids = rng.integers(0, config.get("vocab_size", 100), size=(batch, length), dtype=np.int64)
    mask = (np.arange(length) < np.array(lengths)[:, None]).astype(np.int64)
    feeds = {"input_ids": np.where(mask == 1, ids, pad_id), "attention_mask": mask}
    if "token_type_ids" in input_names(spec):  # a text pair: the second segment in the back half of each row
        second = (np.arange(length) >= np.array(lengths)[:, None] // 2) & (mask == 1)
        feeds["token_type_ids"] = second.astype(np.int64) if config.get("type_vocab_size", 2) > 1 else 0 * mask
    return feeds


def check_inputs(spec) -> list[dict[str, np.ndarray]]:
    limit = spec.backbone_config.get("max_position_embeddings") or 512
    rng = np.random.default_rng(0)
    return [random_batch(spec, batch, min(length, limit), rng) for batch, length in CHECK_SHAPES]


def torch_outputs(wrapper, spec, batches) -> list[dict[str, np.ndarray]]:
    import torch

    results = []
    with torch.inference_mode():
        for feeds in batches:
            outs = wrapper(*(torch.from_numpy(feeds[name]) for name in input_names(spec)))
            results.append({name: out.numpy() for name, out in zip(output_names(spec), outs)})
    return results


def max_abs_diff(path: Path, batches, expected) -> dict[str, float]:
    """The largest difference per output between ONNX Runtime on `path` and PyTorch, over every check batch."""
    _, ort = require_onnx()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the check runs are not the user's business
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    diffs: dict[str, float] = {}
    for feeds, reference in zip(batches, expected):
        names = list(reference)
        for name, value in zip(names, session.run(names, feeds)):
            diffs[name] = max(diffs.get(name, 0.0), float(np.abs(value - reference[name]).max()))
    return diffs


def export_graph(wrapper, spec, path: Path) -> tuple[str, str | None]:
    """Write the plain graph; torch's dynamo exporter first, the TorchScript one where dynamo cannot
    (onnxscript missing, or a model it cannot trace). Returns the exporter used and why dynamo was not."""
    import torch

    encoder = wrapper.model.encoder
    if hasattr(encoder, "set_attn_implementation"):
        # eager attention exports as MatMul/Softmax/MatMul, the pattern onnxruntime fuses into Attention
        # (SDPA's decomposition, with its NaN guard, is not recognised); the same results in fp32
        encoder.set_attn_implementation("eager")
    names = input_names(spec)
    limit = spec.backbone_config.get("max_position_embeddings") or 512
    # example inputs of size >= 2 on the dynamic axes: torch.export specializes sizes 0 and 1
    example = tuple(
        torch.from_numpy(v) for v in random_batch(spec, 2, min(8, limit), np.random.default_rng(1)).values()
    )
    common = dict(input_names=names, output_names=output_names(spec), opset_version=OPSET)
    failure = None
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter's dependency)

        batch = torch.export.Dim("batch", min=1)
        sequence = torch.export.Dim("sequence", min=1, max=limit)
        dynamic = {name: {0: batch, 1: sequence} for name in names}
        with _quiet():
            torch.onnx.export(
                wrapper,
                example,
                str(path),
                dynamo=True,
                dynamic_shapes=dynamic,
                external_data=False,
                optimize=True,
                **common,
            )
        return "dynamo", None
    except ImportError:
        failure = "onnxscript is not installed"
    except Exception as err:  # torch.export raises many kinds; the fallback below is the answer to each
        failure = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    logging.getLogger(__name__).info("dynamo exporter unavailable (%s); using the TorchScript exporter", failure)
    path.unlink(missing_ok=True)
    dynamic_axes = {name: {0: "batch", 1: "sequence"} for name in names} | output_axes(wrapper, spec)
    with _quiet(), torch.no_grad():
        torch.onnx.export(wrapper, example, str(path), dynamo=False, dynamic_axes=dynamic_axes, **common)
    return "torchscript", failure


def output_axes(wrapper, spec) -> dict[str, dict[int, str]]:
    """Which axes of each output follow the batch and the sequence (per token or per text: the registry does
    not say), found by running two input shapes."""
    limit = spec.backbone_config.get("max_position_embeddings") or 512
    rng = np.random.default_rng(2)
    small, large = torch_outputs(
        wrapper, spec, [random_batch(spec, 2, min(5, limit), rng), random_batch(spec, 3, min(7, limit), rng)]
    )
    axes = {}
    for name in small:
        changed = [i for i, (a, b) in enumerate(zip(small[name].shape, large[name].shape)) if a != b]
        axes[name] = {i: "batch" if i == 0 else "sequence" for i in changed}
    return axes


@contextlib.contextmanager
def _quiet():
    """The exporters' progress lines, tracer warnings and the optimizer's and quantizer's log records are
    noise in a CLI command's output: what matters is checked and reported."""
    level = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(level)


def optimize(path: Path, spec, batches, expected, plain: dict[str, float]) -> tuple[bool, dict[str, int]]:
    """Fuse attention, layer norms and GELU with onnxruntime's transformer optimizer; keep the result only if
    it still matches PyTorch (MATCH, or twice the plain graph's own difference where that is already larger)."""
    from transformers import AutoConfig

    model_type = spec.backbone_config.get("model_type")
    if model_type not in OPTIMIZABLE:
        return False, {}
    from onnxruntime.transformers.optimizer import optimize_model

    config = AutoConfig.for_model(**spec.backbone_config)  # attribute maps: distilbert's n_heads/dim too
    candidate = path.with_name("optimized.onnx")
    try:
        with _quiet():
            optimized = optimize_model(
                str(path),
                model_type="bert",
                num_heads=config.num_attention_heads,
                hidden_size=config.hidden_size,
                opt_level=1,
            )
            optimized.save_model_to_file(str(candidate))
            stats = optimized.get_fused_operator_statistics()
        fused = {op: stats.get(op, 0) for op in FUSED if stats.get(op, 0)}
        diffs = max_abs_diff(candidate, batches, expected)
    except Exception as err:  # the fusions are an optimization: the plain graph stays
        logging.getLogger(__name__).info("ONNX optimization skipped: %s", err)
        candidate.unlink(missing_ok=True)
        return False, {}
    if max(diffs.values()) > max(MATCH, 2 * max(plain.values())):
        logging.getLogger(__name__).info(
            "optimized ONNX graph dropped: it differs from PyTorch by %.2e", max(diffs.values())
        )
        candidate.unlink()
        return False, {}
    candidate.replace(path)
    return True, fused


def quantize_int8(path: Path) -> None:
    """Dynamic int8 weights (activations quantized per call): per output channel, which keeps small models'
    logits far closer than one scale per tensor; the result replaces the fp32 graph."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = path.with_name("quantized.onnx")
    with _quiet():
        # the fused ops (com.microsoft domain) defeat ONNX shape inference: their outputs are float32
        quantize_dynamic(
            str(path),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            # 7-bit weights: on CPUs without VNNI (AVX2 laptops) onnxruntime's u8s8 products saturate in int16
            # and 8-bit weights drift far (49% of the largest logit in a test, 1.5% with VNNI); 7 bits cannot overflow
            reduce_range=True,
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    target.replace(path)


def export_onnx(model_dir: str | Path, staging: Path, quantize: str | None = None) -> dict:
    """Write model.onnx, the tokenizer and mtl's config.json (with the report) into `staging`; return the report."""
    onnx, ort = require_onnx()
    if quantize not in (None, "int8"):
        raise InputError(f"--quantize must be int8 for ONNX exports, got '{quantize}'")
    from ..model import load_model, versions

    model, tokenizer = load_model(model_dir)
    spec = model.spec
    wrapper = all_heads(model)
    path = Path(staging) / ONNX_FILE
    batches = check_inputs(spec)
    expected = torch_outputs(wrapper, spec, batches)  # before the export switches the attention to eager
    exporter, fallback = export_graph(wrapper, spec, path)
    onnx.checker.check_model(str(path))
    diffs = max_abs_diff(path, batches, expected)
    worst = max(diffs, key=diffs.get)
    if diffs[worst] > EXPORT_LIMIT:
        raise WorkError(f"the ONNX graph does not reproduce the PyTorch model: {worst} differs by {diffs[worst]:.2e}")
    optimized, fused = optimize(path, spec, batches, expected, diffs)
    if optimized:
        diffs = max_abs_diff(path, batches, expected)
    report = {
        "inputs": input_names(spec),
        "outputs": output_names(spec),
        "max_abs_diff": diffs,
        "optimized": optimized,
        "fused": fused,
        "quantized": quantize,
        "exporter": exporter,
        "opset": next(o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx")),
    }
    if fallback:
        report["dynamo_unavailable"] = fallback
    if quantize == "int8":
        quantize_int8(path)
        report["max_abs_diff_fp32"] = diffs
        report["max_abs_diff"] = max_abs_diff(path, batches, expected)
    tokenizer.save_pretrained(staging)
    config = asdict(spec) | {
        "versions": versions() | {"onnx": onnx.__version__, "onnxruntime": ort.__version__},
        "format": ONNX_FORMAT,
        ONNX_FORMAT: report,
    }
    (Path(staging) / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return report
