"""This process's memory: resident set size now and at its peak (Linux /proc, elsewhere getrusage), and handing
freed heap back to the OS."""

from __future__ import annotations

import contextlib
import gc
import platform
import re


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            match = re.search(rf"{field}:\s+(\d+)\s+kB", handle.read())
    except OSError:
        return None
    return int(match.group(1)) if match else None


# The highest RSS read here: Linux's own peak (VmHWM) misses pages dropped by madvise (trim_heap) before it
# looked, so the peak is the larger of the two.
_highest_mb = 0.0


def rss_mb() -> float:
    """The resident set size now (0.0 where /proc is missing)."""
    global _highest_mb
    kb = _status_kb("VmRSS")
    now = kb / 1024 if kb is not None else 0.0
    _highest_mb = max(_highest_mb, now)
    return now


def peak_rss_mb() -> float:
    """The peak resident set size: since the start, or since the last reset_peak_rss() where that works."""
    global _highest_mb
    kb = _status_kb("VmHWM")
    if kb is not None:
        _highest_mb = max(_highest_mb, kb / 1024)
        return _highest_mb
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 1024  # bytes on macOS, kB elsewhere


def reset_peak_rss() -> bool:
    """Reset the peak RSS to the current RSS; False where the OS cannot (the peak then counts from the start)."""
    global _highest_mb
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    _highest_mb = 0.0
    return True


def keep_freed_heap() -> bool:
    """Have glibc keep freed heap for reuse instead of handing it back to the OS at once. A training step frees and
    allocates again the same large activations and gradients (MiniLM's word-embedding gradient alone is 47 MB); by
    default each block over the mmap threshold goes back to the OS and the next step faults its pages in anew,
    zeroed by the kernel: a demo step on 2 AVX2 cores spent 16% of its time on that.
    The RSS then stays near the peak working set instead of swinging around it. The setting is process-wide (a
    notebook that trains keeps it). False where this is not glibc."""
    if platform.system() != "Linux":
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 1 << 30) and mallopt(m_trim_threshold, (1 << 31) - 1))


def trim_heap() -> None:
    """Hand the free pages of glibc's heap back to the OS, those between blocks still in use too (malloc_trim):
    the RSS comes down to the blocks in use. Kept heap (keep_freed_heap) fragments as batches of other shapes
    come and go, and without this the RSS grows with it."""
    if platform.system() == "Linux":
        import ctypes

        rss_mb()  # the RSS before: part of the peak
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def release_memory() -> None:
    """Collect garbage and hand freed heap back to the OS (glibc keeps it otherwise)."""
    gc.collect()
    trim_heap()


def memory_record(device) -> dict:
    """A training epoch's memory figures: RSS now and at its peak so far, and on CUDA the peak allocated."""
    record = {"rss_mb": round(rss_mb(), 1), "peak_rss_mb": round(peak_rss_mb(), 1)}
    if str(device).startswith("cuda"):
        import torch

        record["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return record
