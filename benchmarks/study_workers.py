"""One worker or two on this machine's cores: which finishes a study's grid sooner, and what the engine costs.

    python benchmarks/study_workers.py --out /tmp/study-workers

Runs the same grid (masking rate x seed, ordinary `pretrain` trials at the mini preset on builtin:sotu)
twice from an empty study directory: once with one worker (all cores, in this process, so the engine's
own time per trial is measured: queue, hashing, storage, report), once with `--jobs 2` (two worker
processes with cores/2 threads each). The corpus, tokenizer and shards are prepared once first, as a
study does before its workers start. Prints the wall times, their ratio, and the engine seconds per trial.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml


def study_file(out: Path, name: str, tokens: int, rates: list[float], seeds: list[int]) -> Path:
    spec = {"name": name, "run": "pretrain", "seeds": seeds, "grid": {"masking.rate": rates},
            "base": {"data.corpus": "builtin:sotu", "model.preset": "mini", "train.max_tokens": tokens,
                     "train.max_steps": 100000, "train.eval_every": 0, "eval.score_sentences": 16},
            "metric": {"name": "masked_accuracy", "goal": "maximize"}}
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/study-workers"))
    parser.add_argument("--tokens", type=int, default=200_000, help="training tokens per trial")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.15, 0.3, 0.4, 0.6])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()

    from masklab.study.spec import load_spec
    from masklab.study.worker import warm_caches, work

    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    one = study_file(args.out, "one-worker", args.tokens, args.rates, args.seeds)
    two = study_file(args.out, "two-workers", args.tokens, args.rates, args.seeds)
    warm_caches(load_spec(str(one)), args.out / "one", show_progress=False)

    started = time.perf_counter()
    done = work(load_spec(str(one)), args.out / "one")
    wall_one = time.perf_counter() - started

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "masklab.cli", "study", str(two), "--out", str(args.out / "two"), "--jobs", "2",
                    "--quiet"], check=True, stdout=subprocess.DEVNULL)
    wall_two = time.perf_counter() - started

    n = done.finished
    print(f"machine: {os.cpu_count()} cores; grid: {len(args.rates)} rates x {len(args.seeds)} seeds = {n} trials, "
          f"mini preset, {args.tokens:,} tokens each")
    print(f"one worker  ({os.cpu_count()} threads, in process): {wall_one:7.1f} s")
    print(f"two workers ({max(1, (os.cpu_count() or 1) // 2)} thread(s) each):     {wall_two:7.1f} s (incl. starting the processes)")
    print(f"two workers / one worker speed: {wall_one / wall_two:.2f}x")
    print(f"engine time per trial (one worker): mean {statistics.fmean(done.engine_seconds):.2f} s, "
          f"max {max(done.engine_seconds):.2f} s; trial time mean {statistics.fmean(done.trial_seconds):.1f} s")


if __name__ == "__main__":
    main()
