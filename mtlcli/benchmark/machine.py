"""What the benchmark runs on and what a phase costs in memory: the machine description stored next to every
figure, the peak memory of a phase, handing freed memory back between phases, and a note when the machine
is busy."""

from __future__ import annotations

import os
import platform

from ..memory import peak_rss_mb, release_memory, reset_peak_rss, rss_mb


def machine(device: str = "cpu") -> dict:
    """What every figure is measured on: stored next to each of them."""
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    kind = str(device).split(":")[0]
    gpu = torch.cuda.get_device_name(0) if kind == "cuda" and torch.cuda.is_available() else ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "os": platform.platform(),
        "device": gpu or kind,
        "avx512_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
    }


class PeakMemory:
    """Peak memory of a phase: max allocated on CUDA; on the CPU the peak RSS of this process (Linux's VmHWM,
    reset at the start of the phase; where it cannot be reset, the process's peak since it started). The RSS
    includes Python, torch and whatever earlier phases left resident: `start_mb` is the RSS the phase began with."""

    def __init__(self, device):
        self.kind = "cuda_max_allocated" if str(device).startswith("cuda") else "rss"
        self.device = device
        self.resettable = True
        self.start_mb = 0.0

    def reset(self) -> None:
        release_memory()
        if self.kind == "cuda_max_allocated":
            import torch

            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_mb = torch.cuda.memory_allocated(self.device) / 2**20
            return
        self.start_mb = rss_mb()
        self.resettable = reset_peak_rss()

    def peak_mb(self) -> float:
        if self.kind == "cuda_max_allocated":
            import torch

            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return peak_rss_mb()


def busy_note(cores: int | None) -> str:
    """Other work on the machine slows every figure (and threads fighting over cores, a lot)."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return ""
    if cores and load > 0.5 * cores:
        return (
            f"the machine is busy (load average {load:.1f} on {cores} cores): timings will be slower and noisier "
            f"than on an idle machine; --set threads=N below the free cores helps"
        )
    return ""


def sync(device) -> None:
    """Wait for the device's queued work, so that a timer stopped now has seen it."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
