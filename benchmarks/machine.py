"""What benchmarks share: the machine line every benchmark prints with its figures, best-of timing, `--smoke`,
and the RATIO line every benchmark prints per comparison."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

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


# --smoke: every benchmark's own code path at a size that runs in seconds, so the benchmarks cannot rot
# (tests/test_benchmarks.py runs each one so). Scripts pass their smoke sizes as argument defaults.
SMOKE_DOCUMENTS = 20  # builtin:sotu speeches in a smoke run: ~48k training tokens, one held-out speech


def parse_args(parser: argparse.ArgumentParser, smoke: dict) -> argparse.Namespace:
    """`parser.parse_args()` plus `--smoke`: the same run at the sizes in `smoke` (argument dest -> value, or a
    function called only in a smoke run, e.g. TEMP_DIR). Arguments given on the command line still win, and
    an argument that `smoke` fills in is no longer required."""
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the same code path at a size that runs in seconds (a check that the benchmark works, not a figure)",
    )
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--smoke", action="store_true")
    if probe.parse_known_args()[0].smoke:
        values = {dest: value() if callable(value) else value for dest, value in smoke.items()}
        for action in parser._actions:
            if action.dest in values:
                action.required = False
        parser.set_defaults(**values)
    return parser.parse_args()


def temp_dir() -> Path:
    """A fresh temporary directory, removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix="masklab-smoke-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


TEMP_DIR = temp_dir  # as a smoke value: a fresh temporary directory per smoke run


def smoke_pairs(spec: str = "builtin:en", n: int = 70) -> str:
    """A BLiMP-format JSONL file of `n` pairs spread over the suite `spec` (every phenomenon), for smoke runs."""
    from masklab.evaluate.pairs import load_pairs

    pairs = load_pairs(spec)
    path = temp_dir() / "pairs.jsonl"
    rows = [
        {"sentence_good": p.good, "sentence_bad": p.bad, "phenomenon": p.phenomenon}
        for p in pairs[:: max(1, len(pairs) // n)][:n]
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def smoke_general_text(spec: str = "builtin:en-chat", n: int = 64) -> str:
    """A .txt file of `n` lines (3+ words, one per line) spread over the corpus `spec`, for smoke runs."""
    from masklab.data.sources import iter_documents

    lines = [
        " ".join(line.split()) for doc in iter_documents(spec) for line in doc.splitlines() if len(line.split()) >= 3
    ]
    path = temp_dir() / f"{spec.replace(':', '-')}.txt"
    path.write_text("\n".join(lines[:: max(1, len(lines) // n)][:n]) + "\n", encoding="utf-8")
    return str(path)


def smoke_task(spec: str = "builtin:sotu-era", per_label: int = 40) -> str:
    """A JSONL task file (text, label) of `per_label` examples per label spread over the task `spec`, for smoke runs."""
    from masklab.data.tasks import read_examples

    examples = read_examples(spec, "text", "", "label")
    by_label: dict[str, list[str]] = {}
    for text, label in zip(examples.texts, examples.labels):
        by_label.setdefault(label, []).append(text)
    path = temp_dir() / f"{spec.replace(':', '-')}.jsonl"
    rows = [
        {"text": text, "label": label}
        for label, texts in sorted(by_label.items())
        for text in texts[:: max(1, len(texts) // per_label)][:per_label]
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def ratio_line(
    name: str,
    masklab_value: float,
    baseline_value: float,
    unit: str,
    *,
    masklab: str = "masklab",
    baseline: str = "hf",
    lower_is_better: bool = False,
) -> str:
    """Print (and return) the one line every benchmark prints per comparison, in one form:
    `RATIO NAME: masklab 1.23e+05 tok/s vs hf 4.5e+04 tok/s = 2.73x`. The ratio is masklab / baseline, or
    baseline / masklab where lower is better (times, perplexities), so above 1 always means masklab ahead."""
    if lower_is_better:
        numerator, denominator = baseline_value, masklab_value
    else:
        numerator, denominator = masklab_value, baseline_value
    if denominator:
        value = numerator / denominator
        ratio = f"{value:.2f}x" if abs(value) >= 0.01 else f"{value:.6f}x"
    else:
        ratio = "undefined (the divisor is 0)"
    order = f" ({baseline} / {masklab}: lower is better)" if lower_is_better else ""
    line = (
        f"RATIO {name}: {masklab} {masklab_value:.4g} {unit} vs {baseline} {baseline_value:.4g} {unit} = {ratio}{order}"
    )
    print(line, flush=True)
    return line
