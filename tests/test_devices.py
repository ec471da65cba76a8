"""Device and precision resolution (mtlcli.devices): one answer for train, evaluate, predict and benchmark."""

from __future__ import annotations

import pytest
import torch

from mtlcli.devices import PRECISIONS, autocast_for, cpu_has_native_bf16, resolve_device, resolve_precision
from mtlcli.errors import InputError


def test_devices_named_or_auto():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="'cuda:1' asked for, but it is not available"):
            resolve_device("cuda:1")


@pytest.mark.parametrize(
    "capability, bf16_hardware, expected",
    [("AVX512", True, "bf16"), ("AVX2", True, "fp32"), ("AVX512", False, "fp32"), ("DEFAULT", False, "fp32")],
)
def test_auto_precision_on_the_cpu_follows_what_torch_dispatches(monkeypatch, capability, bf16_hardware, expected):
    # ATEN_CPU_CAPABILITY=avx2 on an AVX512-BF16 Xeon: torch reports AVX2, and bf16 would be emulated (slow)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16_hardware)
    assert cpu_has_native_bf16() is (expected == "bf16")
    assert resolve_precision("auto", "cpu") == expected


def test_explicit_precisions_and_their_limits():
    assert PRECISIONS == ("auto", "fp32", "bf16", "fp16")
    assert resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu", quantize=True) == "fp32"
    with pytest.raises(InputError, match="fp16 is for GPUs"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(InputError, match="cannot be combined with --precision bf16"):
        resolve_precision("bf16", "cpu", quantize=True)
    with pytest.raises(InputError, match="precision must be one of"):
        resolve_precision("int4", "cpu")


def test_autocast_only_below_fp32():
    with autocast_for("cpu", "fp32")():
        assert not torch.is_autocast_enabled("cpu")
    with autocast_for("cpu", "bf16")():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
