"""One worker or two on this machine's cores, and N workers on a database against N on the journal file: which
finishes a study's grid sooner, and what the engine costs per trial.

    python benchmarks/study_workers.py --out /tmp/study-workers
    python benchmarks/study_workers.py --storage postgresql://USER:PW@HOST/DB   # also N workers on that database
    python benchmarks/study_workers.py --smoke       # seconds: does it still run? (the database part on SQLite)

Runs the same grid (masking rate x seed, ordinary `pretrain` trials at the mini preset on builtin:sotu) from an
empty study directory: once with one worker (all cores, in this process, so the engine's own time per trial is
measured: queue, hashing, storage, report), once with `--jobs 2` (two worker processes with cores/2 threads each).
With --storage, twice more: `--workers` processes of `masklab study --worker` started at the same instant, on
the journal file (one shared study directory) and on the database (each its own --out, as machines would);
each worker prints its engine seconds per trial. The corpus, tokenizer and shards are prepared once first, as
a study does before its workers start.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

from machine import SMOKE_DOCUMENTS, TEMP_DIR, machine, parse_args, ratio_line

ENGINE_TARGET_SECONDS = 2.0  # the engine's own time per trial (queue, storage, report) must stay at or under this


def study_file(out: Path, name: str, tokens: int, rates: list[float], seeds: list[int], extra: list[str] = ()) -> Path:
    spec = {
        "name": name,
        "run": "pretrain",
        "seeds": seeds,
        "grid": {"masking.rate": rates},
        "base": {
            "data.corpus": "builtin:sotu",
            "model.preset": "mini",
            "train.max_tokens": tokens,
            "train.max_steps": 100000,
            "train.eval_every": 0,
            "eval.score_sentences": 16,
            **{k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in extra)},
        },
        "metric": {"name": "masked_accuracy", "goal": "maximize"},
    }
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def many_workers(path: Path, out: Path, storage: str | None, n: int) -> dict:
    """`n` workers started at the same instant: wall seconds, trials, and the engine's seconds per trial over
    all workers (from each worker's last line). On the journal file they share one study directory (the
    journal lives there); on a database each has its own, as on n machines."""
    from masklab.study.storage import STORAGE_ENV

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop(STORAGE_ENV, None)
    if storage:
        env[STORAGE_ENV] = storage  # the password stays off the command line
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "masklab.cli",
                "study",
                str(path),
                "--worker",
                "--quiet",
                "--threads",
                "1",
                "--out",
                str(out / (f"worker{i}" if storage else "shared")),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(n)
    ]
    logs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - started
    if any(p.returncode for p in procs):
        raise SystemExit("a worker failed:\n" + "\n".join(log[-2000:] for log in logs))
    trials, engine = 0, 0.0
    for log in logs:
        found = re.search(r"finished (\d+) trial\(s\) of study [^\s;]+(?:; engine ([0-9.]+) s per trial)?", log)
        trials += int(found.group(1))
        engine += int(found.group(1)) * float(found.group(2) or 0)
    return {"wall": wall, "trials": trials, "engine": engine / max(trials, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/study-workers"))
    parser.add_argument("--tokens", type=int, default=200_000, help="training tokens per trial")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.15, 0.3, 0.4, 0.6])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra setting of every trial's base (repeatable), e.g. model.preset=tiny",
    )
    parser.add_argument(
        "--storage",
        help="a database URL (postgresql://...; or set MASKLAB_STUDY_STORAGE): also run "
        "the grid with --workers processes on it and on the journal file",
    )
    parser.add_argument("--workers", type=int, default=4, help="worker processes started at once with --storage")
    args = parse_args(
        parser,
        smoke=dict(
            out=TEMP_DIR,
            tokens=4096,
            rates=[0.15, 0.3],
            seeds=[0],
            workers=2,
            set=[
                "model.preset=tiny",
                f"data.max_documents={SMOKE_DOCUMENTS}",
                "train.batch_size=8",
                "eval.max_blocks=8",
                "eval.pppl_sequences=2",
                "eval.score_sentences=4",
            ],
        ),
    )
    storage = args.storage or os.environ.get("MASKLAB_STUDY_STORAGE")
    if args.smoke and not storage:
        storage = f"sqlite:///{args.out / 'smoke.db'}"  # the database code path without a server

    from masklab.study.spec import load_spec
    from masklab.study.storage import redact
    from masklab.study.worker import warm_caches, work

    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    one = study_file(args.out, "one-worker", args.tokens, args.rates, args.seeds, args.set)
    two = study_file(args.out, "two-workers", args.tokens, args.rates, args.seeds, args.set)
    warm_caches(load_spec(str(one)), args.out / "one", show_progress=False)
    print(f"machine: {machine()}")

    started = time.perf_counter()
    done = work(load_spec(str(one)), args.out / "one")
    wall_one = time.perf_counter() - started

    started = time.perf_counter()
    journal_env = {k: v for k, v in os.environ.items() if k != "MASKLAB_STUDY_STORAGE"}  # its journal, not --storage
    subprocess.run(
        [
            sys.executable,
            "-m",
            "masklab.cli",
            "study",
            str(two),
            "--out",
            str(args.out / "two"),
            "--jobs",
            "2",
            "--quiet",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        env=journal_env,
    )
    wall_two = time.perf_counter() - started

    n = done.finished
    preset = dict(s.split("=", 1) for s in args.set).get("model.preset", "mini")
    print(
        f"grid: {len(args.rates)} rates x {len(args.seeds)} seeds = {n} trials, {preset} preset, "
        f"{args.tokens:,} tokens each"
    )
    print(f"one worker  ({os.cpu_count()} threads, in process): {wall_one:7.1f} s")
    print(
        f"two workers ({max(1, (os.cpu_count() or 1) // 2)} thread(s) each):     {wall_two:7.1f} s "
        "(incl. starting the processes)"
    )
    print(f"two workers / one worker speed: {wall_one / wall_two:.2f}x")
    print(
        f"engine time per trial (one worker): mean {statistics.fmean(done.engine_seconds):.2f} s, max "
        f"{max(done.engine_seconds):.2f} s; trial time mean {statistics.fmean(done.trial_seconds):.1f} s\n"
    )
    ratio_line(
        f"study_workers {n} trials wall time, two workers vs one",
        wall_two,
        wall_one,
        "s",
        masklab="two workers",
        baseline="one worker",
        lower_is_better=True,
    )
    if storage:
        compare_storages(args, storage, redact(storage))


def compare_storages(args, storage: str, shown: str) -> None:
    """The same grid by --workers processes started at once on the journal file, then on the database."""
    name = f"db-{int(time.time())}"  # a fresh study in a database that may hold earlier runs' studies
    path = study_file(args.out, name, args.tokens, args.rates, args.seeds, args.set)
    journal = many_workers(path, args.out / "journal", None, args.workers)
    database = many_workers(path, args.out / "database", storage, args.workers)
    print(f"\n{args.workers} workers started at once, 1 thread each:")
    for label, r in (("journal file", journal), (shown, database)):
        verdict = "within" if r["engine"] <= ENGINE_TARGET_SECONDS else "OVER"
        print(
            f"  {label}: {r['trials']} trials in {r['wall']:.1f} s; engine {r['engine']:.2f} s per trial "
            f"({verdict} the {ENGINE_TARGET_SECONDS:.0f} s target)"
        )
    ratio_line(
        f"study_workers {args.workers} workers engine seconds per trial, database vs journal",
        database["engine"],
        journal["engine"],
        "s",
        masklab=shown.split(":", 1)[0],
        baseline="journal",
        lower_is_better=True,
    )


if __name__ == "__main__":
    main()
