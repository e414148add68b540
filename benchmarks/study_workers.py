"""One worker or two on this machine's cores: which finishes a study's grid sooner, and what the engine costs.

    python benchmarks/study_workers.py --out /tmp/study-workers
    python benchmarks/study_workers.py --smoke       # seconds: does it still run?

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
from machine import SMOKE_DOCUMENTS, TEMP_DIR, parse_args, ratio_line


def study_file(out: Path, name: str, tokens: int, rates: list[float], seeds: list[int], extra: list[str] = ()) -> Path:
    spec = {"name": name, "run": "pretrain", "seeds": seeds, "grid": {"masking.rate": rates},
            "base": {"data.corpus": "builtin:sotu", "model.preset": "mini", "train.max_tokens": tokens,
                     "train.max_steps": 100000, "train.eval_every": 0, "eval.score_sentences": 16,
                     **{k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in extra)}},
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
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra setting of every trial's base (repeatable), e.g. model.preset=tiny")
    args = parse_args(parser, smoke=dict(out=TEMP_DIR, tokens=4096, rates=[0.15, 0.3], seeds=[0], set=[
        "model.preset=tiny", f"data.max_documents={SMOKE_DOCUMENTS}", "train.batch_size=8", "eval.max_blocks=8",
        "eval.pppl_sequences=2", "eval.score_sentences=4"]))

    from masklab.study.spec import load_spec
    from masklab.study.worker import warm_caches, work

    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    one = study_file(args.out, "one-worker", args.tokens, args.rates, args.seeds, args.set)
    two = study_file(args.out, "two-workers", args.tokens, args.rates, args.seeds, args.set)
    warm_caches(load_spec(str(one)), args.out / "one", show_progress=False)

    started = time.perf_counter()
    done = work(load_spec(str(one)), args.out / "one")
    wall_one = time.perf_counter() - started

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "masklab.cli", "study", str(two), "--out", str(args.out / "two"), "--jobs", "2",
                    "--quiet"], check=True, stdout=subprocess.DEVNULL)
    wall_two = time.perf_counter() - started

    n = done.finished
    preset = dict(s.split("=", 1) for s in args.set).get("model.preset", "mini")
    print(f"machine: {os.cpu_count()} cores; grid: {len(args.rates)} rates x {len(args.seeds)} seeds = {n} trials, "
          f"{preset} preset, {args.tokens:,} tokens each")
    print(f"one worker  ({os.cpu_count()} threads, in process): {wall_one:7.1f} s")
    print(f"two workers ({max(1, (os.cpu_count() or 1) // 2)} thread(s) each):     {wall_two:7.1f} s (incl. starting the processes)")
    print(f"two workers / one worker speed: {wall_one / wall_two:.2f}x")
    print(f"engine time per trial (one worker): mean {statistics.fmean(done.engine_seconds):.2f} s, "
          f"max {max(done.engine_seconds):.2f} s; trial time mean {statistics.fmean(done.trial_seconds):.1f} s\n")
    ratio_line(f"study_workers {n} trials wall time, two workers vs one", wall_two, wall_one, "s", masklab="two workers",
               baseline="one worker", lower_is_better=True)


if __name__ == "__main__":
    main()
