"""What benchmarks share: the machine line every benchmark prints with its figures, and best-of timing."""

from __future__ import annotations

import os
import platform
import time

import torch


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def machine() -> str:
    """CPU model, the cores this process may use, torch's version and intra-op threads, and the load
    average at the start (other work on a shared machine slows every figure)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    return f"{cpu_model()}, {cores} usable cores{load}; torch {torch.__version__}, {torch.get_num_threads()} threads"


def best_pass_seconds(fn, batches: list, reps: int) -> float:
    """Seconds of the fastest of `reps` passes of `fn` over `batches` (after one warm-up call)."""
    fn(batches[0])
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        for batch in batches:
            fn(batch)
        best = min(best, time.perf_counter() - start)
    return best
