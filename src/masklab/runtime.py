"""Process-level settings that make training fast on the machine at hand: allocator, precision, autocast.

glibc's malloc hands large freed blocks back to the kernel and then page-faults them in again on the
next step: for a small BERT on CPU that was ~80k page faults and ~15% of each step in the kernel.
Raising the trim and mmap thresholds keeps those blocks in the process (Intel's PyTorch CPU guide
gets the same effect by preloading jemalloc/tcmalloc).

`precision: auto` is decided by measurement, not by CPU flags: on some CPUs with AVX512-BF16 and no
AMX a bf16 matmul runs at 0.6x the fp32 one, on others (AMD Zen 4 class) at 4-5x, and the flags
cannot tell the two apart. A sub-second timing of both at the model's shapes is cached per machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from accelerate import PartialState

from masklab.fsutil import write_json_atomic

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30  # freed blocks up to 1 GiB stay mapped for reuse
_done = False

BF16_MARGIN = 1.25  # bf16 must beat fp32 matmuls by this factor: autocast's casts and fp32 norms/softmax eat the rest
MEASURE_SECONDS = 0.2  # timing per dtype (plus warm-up): the whole measurement stays under a second


def tune_allocator() -> bool:
    """Keep freed memory for reuse (Linux/glibc only; a no-op elsewhere). Returns whether it applied."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        _done = bool(libc.mallopt(M_TRIM_THRESHOLD, _KEEP_BYTES)) and bool(libc.mallopt(M_MMAP_THRESHOLD, _KEEP_BYTES))
    except (OSError, AttributeError):  # musl or another libc without mallopt
        _done = False
    return _done


def default_cache_root() -> Path:
    """$MASKLAB_CACHE, else ~/.cache/masklab: where tokenised corpora and machine measurements are kept."""
    return Path(os.environ.get("MASKLAB_CACHE") or Path.home() / ".cache" / "masklab").expanduser()


def autocast_context(precision: str, device_type: str = "cpu"):
    if precision == "bf16":
        return torch.autocast(device_type=device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def device_of(module) -> torch.device:
    return next(module.parameters()).device


def _machine_key() -> str:
    """What the matmul speed depends on: the CPU model and its flags, torch's build, the thread count."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        lines = [line for line in info.splitlines() if line.startswith(("model name", "flags"))][:2]
    except OSError:
        lines = [platform.processor()]
    text = "|".join([*lines, torch.__version__, str(torch.get_num_threads()), platform.machine()])
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _rate(dtype: torch.dtype, m: int, k: int, n: int, seconds: float = MEASURE_SECONDS / 3) -> float:
    """GFLOP/s of an (m, k) @ (k, n) matmul in `dtype`, timed for about `seconds`."""
    generator = torch.Generator().manual_seed(0)  # not the global one: measuring must not shift a run's random stream
    a, b = torch.randn(m, k, generator=generator).to(dtype), torch.randn(k, n, generator=generator).to(dtype)
    for _ in range(2):  # warm-up: oneDNN picks and caches its kernel on first use
        a @ b
    reps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or reps < 3:
        a @ b
        reps += 1
    return 2 * m * k * n * reps / elapsed / 1e9


def _best_rates(m: int, k: int, n: int, rounds: int = 3) -> dict:
    """The faster of `rounds` interleaved timings per dtype: a burst of other work on the machine slows
    one round, not the comparison."""
    rates = {"bf16_gflops": 0.0, "fp32_gflops": 0.0}
    for _ in range(rounds):
        rates["bf16_gflops"] = max(rates["bf16_gflops"], _rate(torch.bfloat16, m, k, n))
        rates["fp32_gflops"] = max(rates["fp32_gflops"], _rate(torch.float32, m, k, n))
    return rates


def measure_matmul(m: int, k: int, n: int, cache_root: Path | None = None) -> dict:
    """{"bf16_gflops", "fp32_gflops"} at this shape on this machine; measured once, then read from the cache."""
    path = (cache_root or default_cache_root()) / "machine" / f"matmul-{_machine_key()}.json"
    key = f"{m}x{k}x{n}"
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if key not in known:
        known[key] = _best_rates(m, k, n)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, known)
        except OSError:  # a read-only cache only costs a re-measurement next time
            pass
    return known[key]


def choose_precision(
    precision: str, hidden: int = 256, intermediate: int = 1024, tokens: int = 4096, cache_root: Path | None = None
) -> tuple[str, dict]:
    """(the precision to train in, how it was decided). `auto`: on CUDA bf16 where supported (Ampere+);
    on CPU bf16 only if a bf16 matmul at the model's feed-forward shape (tokens x hidden x intermediate)
    measured at least BF16_MARGIN times faster than fp32 here."""
    if precision != "auto":
        return precision, {"precision_rule": "set"}
    if torch.cuda.is_available():
        choice = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return choice, {"precision_rule": "cuda: bf16 where supported"}
    rates = measure_matmul(min(tokens, 4096), hidden, intermediate, cache_root)
    faster = rates["bf16_gflops"] >= BF16_MARGIN * rates["fp32_gflops"]
    return ("bf16" if faster else "fp32"), {"precision_rule": f"measured: bf16 if >= {BF16_MARGIN}x fp32", **rates}


def process_shortfall(processes: int, env: dict | None = None) -> str | None:
    """One warning line when the launcher asked for more processes than the run has (`processes`), else None.

    torchrun and `accelerate launch --multi_gpu` export WORLD_SIZE. accelerate's simple launcher (`--cpu`,
    or no `--multi_gpu` on a CPU-only machine) exports no process count and starts one process whatever
    `--num_processes` says; it sets MASTER_PORT only when asked for more than one process or machine."""
    env = os.environ if env is None else env
    fix = (
        "for N processes on CPU use `accelerate launch --multi_gpu --num_processes N` (gloo) or `torchrun "
        "--nproc_per_node N`"
    )
    asked = int(env.get("WORLD_SIZE") or 0)
    if asked > processes:
        return (
            f"masklab: warning: the launcher asked for {asked} processes (WORLD_SIZE) but this run has {processes}"
            f"; {fix}"
        )
    if processes == 1 and not asked and "ACCELERATE_USE_CPU" in env and "MASTER_PORT" in env:
        return (
            "masklab: warning: accelerate launch was asked for several processes but started one "
            f"(`--cpu`, or no `--multi_gpu`, runs one process); {fix}"
        )
    return None


def warn_process_shortfall() -> None:
    """At a run's start, on the main process: `process_shortfall`'s line, if any, on stderr."""

    state = PartialState(cpu=not torch.cuda.is_available())  # the run's own state (a singleton), made a little earlier
    if state.is_main_process and (line := process_shortfall(state.num_processes)):
        print(line, file=sys.stderr, flush=True)


def run_precision(precision: str, model, tokens: int, cache_root: Path | None = None) -> tuple[str, dict]:
    """A run's precision, resolved once at its start from its setting and its model (every run kind calls
    this, then passes the result down: the loop, the evaluations and the preflight never decide again)."""
    return choose_precision(precision, *model_shape(model), tokens, cache_root)


def model_shape(model) -> tuple[int, int]:
    """(hidden, intermediate) of a transformers model config, for `choose_precision`."""
    config = model.config
    hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model", 256)
    inter = (
        getattr(config, "intermediate_size", None)
        or getattr(config, "d_ff", None)
        or getattr(config, "n_inner", None)
        or 4 * hidden
    )
    return int(hidden), int(inter)
