"""The machine description stored next to every benchmark figure."""

from __future__ import annotations

import os
import platform


def machine() -> dict:
    import torch

    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "avx512_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # what torch dispatches to (ATEN_CPU_CAPABILITY)
    }
