"""Benchmarks that cannot rot: every script in benchmarks/ runs its own code path with `--smoke` (a size that
runs in seconds) and prints at least one RATIO line, the one form every comparison is printed in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
HELPERS = {"machine.py", "hf_baseline.py"}  # imported by the benchmarks, not run: every other script is a benchmark
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name not in HELPERS)
RATIO = re.compile(r"^RATIO .*= *[0-9.]+x", re.MULTILINE)
SKIP = re.compile(r"^SKIP (.*)$", re.MULTILINE)
TIMEOUT = 300  # seconds per script; each smoke run takes well under a minute on 2 cores


@pytest.fixture(scope="module")
def benchmark_cache(tmp_path_factory):
    """One cache for all smoke runs: they share the small corpus slice, so its tokenizer is trained once."""
    return tmp_path_factory.mktemp("benchmark-cache")


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_smoke(script, benchmark_cache):
    env = {**os.environ, "MASKLAB_CACHE": str(benchmark_cache), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(BENCHMARKS / script), "--smoke"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        pytest.fail(
            f"{script} --smoke ran past {TIMEOUT} s\n--- stdout tail ---\n{tail(out)}\n--- stderr tail ---\n{tail(err)}"
        )
    seconds = time.perf_counter() - start
    report = (
        f"{script} --smoke: exit {done.returncode} after {seconds:.1f} s\n--- stdout tail ---\n{tail(done.stdout)}"
        f"\n--- stderr tail ---\n{tail(done.stderr)}"
    )
    assert done.returncode == 0, report
    skipped = SKIP.findall(done.stdout)
    if not RATIO.search(done.stdout):
        if skipped:  # the one case a benchmark may exit 0 without figures: it said why it cannot run here
            pytest.skip(f"{script}: {'; '.join(skipped)}")
        pytest.fail(f"no RATIO line in the output\n{report}")
    if skipped:
        warnings.warn(f"{script} ran in part: {'; '.join(skipped)}", stacklevel=1)


def test_every_script_is_a_benchmark_or_a_listed_helper():
    """A new script is a benchmark (run above) unless listed as a helper; helpers are imported, never run."""
    for name in HELPERS:
        assert (BENCHMARKS / name).exists(), f"{name} is listed as a helper but is gone"
        assert '__name__ == "__main__"' not in (BENCHMARKS / name).read_text(), f"{name} is runnable: not a helper"
    assert SCRIPTS and all('__name__ == "__main__"' in (BENCHMARKS / s).read_text() for s in SCRIPTS)


@pytest.fixture(scope="module")
def machine():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import machine as module
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_ratio_line_has_one_form(machine, capsys):
    line = machine.ratio_line("throughput random", 1.23e5, 4.5e4, "tok/s")
    assert capsys.readouterr().out == line + "\n"
    assert RATIO.match(line) and line.endswith("= 2.73x")
    # lower is better (times): baseline / masklab, so above 1 still means masklab ahead, and the line says so
    slower = machine.ratio_line("latency", 20.0, 10.0, "ms", baseline="pipeline", lower_is_better=True)
    assert RATIO.match(slower) and "= 0.50x" in slower and "pipeline / masklab" in slower
    assert RATIO.match(machine.ratio_line("tiny", 1.0, 1e4, "x")), "a small ratio keeps its digits"
    assert not RATIO.match(machine.ratio_line("zero", 1.0, 0.0, "s")), "no ratio is made up for a zero divisor"


def test_smoke_sizes_apply_only_with_smoke_and_explicit_arguments_win(machine, monkeypatch):
    import argparse

    def parse(*argv):
        monkeypatch.setattr(sys, "argv", ["bench", *argv])
        parser = argparse.ArgumentParser()
        parser.add_argument("--steps", type=int, default=100)
        parser.add_argument("--out", type=Path, required=True)
        return machine.parse_args(parser, smoke=dict(steps=2, out=machine.TEMP_DIR))

    normal = parse("--out", "x")
    assert (normal.steps, normal.out, normal.smoke) == (100, Path("x"), False)
    smoke = parse("--smoke")
    assert smoke.steps == 2 and smoke.smoke and smoke.out.is_dir() and not any(smoke.out.iterdir())
    assert parse("--smoke", "--steps", "7").steps == 7
