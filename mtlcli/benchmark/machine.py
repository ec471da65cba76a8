"""What the benchmark runs on and what a phase costs in memory: the machine description stored next to every
figure, the peak memory of a phase, handing freed memory back between phases, and a note when the machine
is busy."""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import re


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
        try:
            with open("/proc/self/status", encoding="ascii") as handle:
                match = re.search(r"VmRSS:\s+(\d+)\s+kB", handle.read())
            self.start_mb = int(match.group(1)) / 1024 if match else 0.0
        except OSError:
            pass
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
                handle.write("5")  # resets the peak RSS to the current RSS
        except OSError:
            self.resettable = False

    def peak_mb(self) -> float:
        if self.kind == "cuda_max_allocated":
            import torch

            return torch.cuda.max_memory_allocated(self.device) / 2**20
        try:
            with open("/proc/self/status", encoding="ascii") as handle:
                match = re.search(r"VmHWM:\s+(\d+)\s+kB", handle.read())
            if match and self.resettable:
                return int(match.group(1)) / 1024
        except OSError:
            pass
        import resource

        self.resettable = False
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if platform.system() == "Darwin" else peak / 1024


def release_memory() -> None:
    """Collect garbage and hand freed heap back to the OS, so that the next phase's RSS starts clean."""
    gc.collect()
    if platform.system() == "Linux":
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


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
