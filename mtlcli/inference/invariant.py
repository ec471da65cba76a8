"""Inference-time Linear layers: batch invariance, and the weights cast once.

Batch invariance: a row's result must not depend on the batch it is computed in. On CPU two things break
it (everything else is row-wise or per sequence): the GEMM kernels pick their blocking from the number of
rows M, so a token computed among 40 rows or among 5,000 rounds differently; and attention depends on the
padded width of the batch. In bf16 one rounding difference is ~0.4% and it propagates: scores move by up
to 3e-2 and near-ties flip (2 of 300 SQuAD answers between batch sizes 1 and 16; in fp32 the differences
are ~1e-6). Two fixes make the results bitwise the same with any batch size:

  * every Linear layer multiplies rows in spans whose M the kernel treats alike. oneDNN may split the sum
    over K between threads for small M (on one Xeon for M < 512 with K = 1536; on an EPYC never, though
    fp32 M < 4 takes another kernel), so spans of a shortest M to MAX_ROWS rows (a short one zero-padded to
    that M) give every row the same result. The shortest M is the smallest of SPAN_MINIMA from which every
    probed M agrees, checked once per weight shape, dtype and thread count on the machine itself
    (`shortest_span`, cached in ~/.cache/mtl): one sentence then costs a GEMM of 8 rows, not 512, where the
    machine allows. Where not even MIN_ROWS holds, fixed blocks of `block_rows` rows (the last one
    zero-padded) are used instead: the kernel then always sees the same M, at the price of more padding;
  * every input is padded to a width that depends on its own length only, and a batch holds inputs of one
    width (mtlcli.inference.batching.bucketed_batches).

The price: the padding of short spans or blocks, the bucket padding (< 1/8 of the length), and some speed
of one large GEMM against several (benchmarks/results/invariant_speed.json, predict_speed.md). A side benefit:
few distinct GEMM shapes, so oneDNN builds few kernels (with one shape per length-sorted batch, it builds
many, and a one-shot command pays for each).

Weights cast once: under autocast a Linear casts its fp32 weight to bf16 on every call (the autocast cache
does not work in inference mode); the cast weights are kept here. Same casts, same kernels, same results.
"""

from __future__ import annotations

import functools
import json
import os
import platform
from pathlib import Path

import torch
from torch import nn

BLOCK_ROWS = 1024
MIN_ROWS, MAX_ROWS = 512, 4096
SPAN_MINIMA = (8, 32, 128, MIN_ROWS)  # candidate shortest spans; 8: a bucket is never narrower
PROBE_ROWS = (8, 13, 32, 57, 128, 200, MIN_ROWS, 777, 1024, 2048, 3001, MAX_ROWS)


def _probe_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mtl" / "gemm-spans.json"


@functools.cache
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


@functools.cache
def _cached_probes(machine: str) -> dict:
    try:
        return json.loads(_probe_cache().read_text()).get(machine, {})
    except (OSError, ValueError):
        return {}


def shortest_span(in_features: int, out_features: int, dtype: torch.dtype) -> int | None:
    """The fewest rows from which every span up to MAX_ROWS gives each row the same result here: the smallest of
    SPAN_MINIMA from which every PROBE_ROWS size agrees with MAX_ROWS, or None where not even MIN_ROWS does
    (checked once per machine, torch version, thread count and kernel choice; the answer is kept on disk)."""
    machine = (  # the kernels too: ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA choose others on the same CPU
        f"{_cpu_model()}|{os.cpu_count()} cores|torch {torch.__version__}|{torch.get_num_threads()} threads"
        f"|{torch.backends.cpu.get_cpu_capability()}|oneDNN {os.environ.get('ONEDNN_MAX_CPU_ISA', 'default')}"
    )
    key = f"{in_features}x{out_features}|{dtype}"
    known = _cached_probes(machine)
    if key not in known or isinstance(known[key], bool):  # a bool: an older mtl's answer for MIN_ROWS only
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(MAX_ROWS, in_features, generator=generator).to(dtype)
        # the very call of the inference path: the transposed view of an (out, in) weight, written into `out`
        weight_t = (torch.randn(out_features, in_features, generator=generator) / in_features**0.5).to(dtype).t()
        bias = torch.randn(out_features, generator=generator).to(dtype)

        def rows(m: int) -> torch.Tensor:
            out = x.new_empty(m, out_features)
            InferenceLinear._gemm(x[:m], weight_t, bias, out)
            return out

        with torch.inference_mode():
            reference = rows(MAX_ROWS)
            agrees = {m: torch.equal(rows(m), reference[:m]) for m in PROBE_ROWS[:-1]}
        known[key] = next((low for low in SPAN_MINIMA if all(ok for m, ok in agrees.items() if m >= low)), None)
        _save_probes(machine, known)
    return known[key]


def _save_probes(machine: str, known: dict) -> None:
    from ..fileio import write_atomic

    path = _probe_cache()
    try:
        everything = json.loads(path.read_text()) if path.exists() else {}
        write_atomic(path, json.dumps(everything | {machine: known}, indent=1))
    except (OSError, ValueError):
        pass  # no cache: the check runs again next time


def span_rows(rows: int, shortest: int) -> int:
    """The rows a Linear layer multiplies for `rows` input rows in spans: MAX_ROWS at a time, the last span
    zero-padded to `shortest`."""
    full = rows // MAX_ROWS * MAX_ROWS
    return full + (max(rows - full, shortest) if rows > full else 0)


class InferenceLinear(nn.Module):
    """A Linear for inference: the autocast dtype's copy of the weights kept, and optionally batch-invariant row spans or blocks."""

    def __init__(self, linear: nn.Linear, block_rows: int | None = BLOCK_ROWS):
        super().__init__()
        self.linear = linear
        self.block_rows = block_rows
        self._cast: dict = {}

    @property
    def weight(self):
        return self.linear.weight

    @property
    def bias(self):
        return self.linear.bias

    def _weights(self, dtype):
        if dtype not in self._cast:
            weight, bias = self.linear.weight.detach(), self.linear.bias
            self._cast[dtype] = (weight.to(dtype).t(), None if bias is None else bias.detach().to(dtype))
        return self._cast[dtype]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kind = x.device.type
        dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else self.linear.weight.dtype
        shape = x.shape
        return self._multiply(x.reshape(-1, shape[-1]).to(dtype), dtype).reshape(*shape[:-1], -1)

    def _multiply(self, flat: torch.Tensor, dtype) -> torch.Tensor:
        weight_t, bias = self._weights(dtype)
        shortest = self.block_rows and flat.device.type == "cpu" and shortest_span(*weight_t.shape, dtype)
        if shortest:
            return self._multiply_spans(flat, weight_t, bias, shortest)
        rows = flat.shape[0]
        block = self.block_rows or max(rows, 1)
        full = rows // block * block
        out = flat.new_empty(full + (block if rows > full else 0), weight_t.shape[1])
        for start in range(0, full, block):
            self._gemm(flat[start : start + block], weight_t, bias, out[start : start + block])
        if rows > full:  # the last rows, zero-padded to a whole block: the kernel always sees `block` rows
            tail = flat.new_zeros(block, flat.shape[1])
            tail[: rows - full] = flat[full:]
            self._gemm(tail, weight_t, bias, out[full:])
        return out[:rows]

    def _multiply_spans(self, flat: torch.Tensor, weight_t, bias, shortest: int) -> torch.Tensor:
        rows = flat.shape[0]
        out = flat.new_empty(span_rows(rows, shortest), weight_t.shape[1])
        for start in range(0, rows, MAX_ROWS):
            span = flat[start : start + MAX_ROWS]
            if len(span) < shortest:  # zero-padded: the kernel never sees fewer than `shortest` rows
                span = torch.cat([span, span.new_zeros(shortest - len(span), span.shape[1])])
            self._gemm(span, weight_t, bias, out[start : start + len(span)])
        return out[:rows]

    @staticmethod
    def _gemm(x, weight_t, bias, out) -> None:
        if bias is None:
            torch.matmul(x, weight_t, out=out)
        else:
            torch.addmm(bias, x, weight_t, out=out)


class InferenceModel(nn.Module):
    """A trained MultiTaskModel made for inference (`prepare_for_inference`): not trainable any more."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.spec = model.spec

    @property
    def encoder(self) -> nn.Module:
        return self.model.encoder

    def forward(self, task: str, input_ids, attention_mask, token_type_ids=None) -> dict:
        return self.model(task, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)

    def batch_plan(self, lengths: list[int], batch_size: int) -> list[tuple[list[int], int]]:
        """Fixed-width buckets (`bucketed_batches`): a row's padded width never depends on its companions."""
        from .batching import bucketed_batches

        return bucketed_batches(lengths, batch_size, getattr(self.encoder.config, "max_position_embeddings", None))


def prepare_for_inference(
    model: nn.Module, batch_invariant: bool = True, block_rows: int = BLOCK_ROWS
) -> InferenceModel:
    """The model for inference: every Linear (encoder and heads) replaced in place, batch-invariant (row spans or
    fixed blocks) if `batch_invariant`; the encoder's unused pooler dropped; inputs padded to width buckets (also
    without batch invariance: few distinct shapes are faster)."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Linear:
                setattr(module, name, InferenceLinear(child, block_rows if batch_invariant else None))
    encoder = getattr(model, "encoder", None)
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # its output is never used: the heads read the last hidden state
    return InferenceModel(model.eval())
