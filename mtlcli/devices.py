"""Which device and which precision: one answer for train, evaluate, predict and benchmark.

torch is imported inside the functions so that `--help` and bad-usage errors answer at once.
"""

from __future__ import annotations

import contextlib

from .errors import InputError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(name: str = "auto") -> str:
    """auto → cuda, else mps, else cpu; a named device (cpu, cuda, cuda:N, mps) must exist here."""
    import torch

    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if name == "auto":
        return next(kind for kind in ("cuda", "mps", "cpu") if available[kind])
    kind = name.split(":")[0]
    if kind not in available:
        raise InputError(f"unknown device '{name}' (expected auto, cpu, cuda[:N] or mps)")
    if not available[kind]:
        raise InputError(f"device '{name}' asked for, but it is not available on this machine")
    return name


def resolve_precision(precision: str, device: str, quantize: bool = False) -> str:
    """auto: bf16 on CPUs with native bf16 (AVX512-BF16/AMX) and on bf16 GPUs, fp16 on other GPUs, else fp32.
    A quantized model computes in fp32 with int8 weights."""
    import torch

    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
    kind = device.split(":")[0]
    if quantize:
        if precision not in ("auto", "fp32"):
            raise InputError(
                f"--quantize computes in fp32 with int8 weights: it cannot be combined with --precision {precision}"
            )
        return "fp32"
    if precision == "auto":
        if kind == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if kind == "cpu" and cpu_has_native_bf16():
            return "bf16"
        return "fp32"
    if precision == "fp16" and kind == "cpu":
        raise InputError("fp16 is for GPUs; on a CPU use precision bf16 or fp32")
    return precision


def cpu_has_native_bf16() -> bool:
    """Whether torch computes bf16 natively here: the CPU has AVX512-BF16/AMX and torch dispatches to AVX512
    kernels. Asked of torch, not of /proc/cpuinfo, so that ATEN_CPU_CAPABILITY=avx2 (and a CPU torch does not
    use fully) gets fp32 — bf16 emulated on AVX2 is slower than fp32."""
    import torch

    return torch.backends.cpu.get_cpu_capability().startswith("AVX512") and torch.cpu._is_avx512_bf16_supported()


def autocast_for(device: str, precision: str):
    """A context factory: autocast to bf16/fp16 for the forward pass, or nothing for fp32."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    kind = device.split(":")[0]
    return lambda: torch.autocast(kind, dtype=dtype)
