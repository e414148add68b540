"""Catastrophic forgetting and its cures, measured: every method on one task sequence, several seeds,
then `masklab compare` over them (table + learning-vs-forgetting curve) into --out.

    python benchmarks/forgetting.py --out /tmp/forgetting [--seeds 3] [--tasks builtin:rt-sentiment,builtin:sotu-era]
    python benchmarks/forgetting.py --smoke          # seconds: does it still run?

Each entry is an ordinary `masklab continual` run in --out/NAME (finished ones are kept, so a killed
benchmark continues where it stopped). The figures in docs/forgetting.md come from this script.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from machine import TEMP_DIR, parse_args, ratio_line, smoke_general_text

# name -> (method, extra settings): the cures at their defaults, and the strengths that trace the curves
RUNS = {
    "naive": ("naive", []),
    "replay": ("replay", []),
    "replay-1pct": ("replay", ["replay_min=10"]),
    "ewc": ("ewc", []),
    "ewc-1e3": ("ewc", ["ewc_lambda=1e3"]),
    "l2sp": ("l2sp", []),
    "l2sp-1": ("l2sp", ["l2sp=1.0"]),
    "lora-r4": ("lora", ["lora_r=4"]),
    "lora-r32": ("lora", ["lora_r=32"]),
    "freeze": ("freeze", []),
    "recadam": ("recadam", []),
    "joint": ("joint", []),
}
COMMON = [
    "max_train_examples=1000",
    "max_test_examples=300",
    "probe_examples=500",
    "general_blocks=128",
    "pll_sentences=16",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", default="builtin:rt-sentiment,builtin:sotu-era")
    parser.add_argument("--init", default="builtin:minilm")
    parser.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join(RUNS))
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra `masklab continual --set` for every entry (repeatable), after the entry's own",
    )
    args = parse_args(
        parser,
        smoke=dict(
            out=TEMP_DIR,
            seeds=1,
            only="naive",
            set=lambda: [
                "max_train_examples=32",
                "max_test_examples=16",
                "probe_examples=32",
                "general_blocks=4",
                "pll_sentences=2",
                "max_steps=2",
                "batch_size=4",
                "max_length=32",
                "mlm_head_steps=2",
                "fisher_examples=8",
                f"general_corpus={smoke_general_text()}",
            ],
        ),
    )
    chosen = [n for n in RUNS if not args.only or n in args.only.split(",")]
    timings = {}
    for name in chosen:
        method, extra = RUNS[name]
        out = args.out / name
        if (out / "summary.json").exists():
            continue
        started = time.perf_counter()
        command = [
            sys.executable,
            "-m",
            "masklab.cli",
            "continual",
            "--tasks",
            args.tasks,
            "--init",
            args.init,
            "--method",
            method,
            "--seeds",
            str(args.seeds),
            "--out",
            str(out),
            "--quiet",
            *[a for s in COMMON + extra + args.set for a in ("--set", s)],
        ]
        if (out / "config.yaml").exists():
            command.append("--resume")
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        timings[name] = time.perf_counter() - started
        print(f"{name}: {timings[name]:.0f} s", flush=True)
    done = [args.out / n for n in chosen if (args.out / n / "summary.json").exists()]
    table = subprocess.run(
        [sys.executable, "-m", "masklab.cli", "compare", *map(str, done), "--out", str(args.out / "compare")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    print(table)
    (args.out / "timings.json").write_text(json.dumps(timings, indent=2), encoding="utf-8")
    summaries = {d.name: json.loads((d / "summary.json").read_text()) for d in done}
    for name, s in summaries.items():  # what the sequence kept of what each task reached right after learning it
        ratio_line(
            f"forgetting {name} final accuracy vs just-learned accuracy",
            s["average_accuracy"],
            s["mean_learning_accuracy"],
            "accuracy",
            masklab=name,
            baseline="just learned",
        )
        if name != "naive" and "naive" in summaries:
            ratio_line(
                f"forgetting {name} vs naive final average accuracy",
                s["average_accuracy"],
                summaries["naive"]["average_accuracy"],
                "accuracy",
                masklab=name,
                baseline="naive",
            )


if __name__ == "__main__":
    main()
