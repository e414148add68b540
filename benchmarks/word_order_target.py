"""Does the default encoder learn word order as fast as a causal LM? The target of the from-scratch recipe.

A tiny causal LM learns to prefer a sentence over its reversal within minutes on 2 cores; the question is
whether the default encoder recipe, at the tiny preset, gets there in the same wall-clock time. Steps:

1. Train a tiny clm (`train.objective=clm`) at growing wall-clock budgets (`train.max_minutes`, the schedule
   follows time) until its reversal accuracy on the run's own held-out sentences (`--pairs from:CORPUS`)
   reaches --clm-target (0.95): that budget is the clm's time to the target.
2. Train each encoder recipe (default: masklab's defaults at the tiny preset, and any of
   default_recipe.py's recipes) for that same budget and score it on the same kind of pairs.

The encoder meets the target when its reversal accuracy is at least --encoder-target (0.90). Finished runs
are kept in --out and never re-run, so an interrupted measurement resumes.

    python benchmarks/word_order_target.py                                  # builtin:sotu, seed 0
    python benchmarks/word_order_target.py --recipes default electra rate-40 --seeds 0 1 2
    python benchmarks/word_order_target.py --smoke                          # seconds: does it still run?

Run it on an otherwise idle machine: the budget is wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from default_recipe import RECIPES, judge, pretrain_run
from machine import SMOKE_DOCUMENTS, TEMP_DIR, machine, parse_args, ratio_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="builtin:sotu")
    parser.add_argument("--budgets", nargs="+", type=float, default=[0.5, 1, 2, 4, 8], help="clm budgets, minutes")
    parser.add_argument("--clm-target", type=float, default=0.95)
    parser.add_argument("--encoder-target", type=float, default=0.90)
    parser.add_argument("--recipes", nargs="+", default=["default"], choices=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", type=Path, default=Path("runs/word-order-target"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an extra --set for every run")
    parser.add_argument(
        "--judge-set", action="append", default=[], metavar="KEY=VALUE", help="an extra evaluation --set"
    )
    args = parse_args(
        parser,
        smoke=dict(
            budgets=[0.02, 0.04],
            clm_target=0.0,
            seeds=[0],
            out=TEMP_DIR,
            set=[f"data.max_documents={SMOKE_DOCUMENTS}", "train.batch_size=8", "eval.max_blocks=8"],
            judge_set=["eval.min_masked_tokens=2000", "eval.corpus_pairs=24"],
        ),
    )
    tiny = ["model.preset=tiny", *args.set]
    rows = []
    for seed in args.seeds:
        reached, clm = None, None
        for minutes in sorted(args.budgets):
            run = pretrain_run(args.out, args.corpus, "clm", ["train.objective=clm", *tiny], minutes, seed)
            clm = judge(run, args.corpus, probe=False, extra=args.judge_set)
            print(json.dumps({"seed": seed, "recipe": "clm", "minutes": minutes, **clm}), flush=True)
            if clm["reversal"] >= args.clm_target:
                reached = minutes
                break
        if reached is None:
            print(f"seed {seed}: the tiny clm did not reach {args.clm_target} reversal in {max(args.budgets)} min")
            continue
        for recipe in args.recipes:
            run = pretrain_run(args.out, args.corpus, recipe, [*RECIPES[recipe], *tiny], reached, seed)
            figures = judge(run, args.corpus, probe=False, extra=args.judge_set)
            rows.append(
                {"seed": seed, "recipe": recipe, "minutes": reached, "clm_reversal": clm["reversal"], **figures}
            )
            print(json.dumps(rows[-1]), flush=True)

    print(f"\n{machine()}; tiny preset; {args.corpus}; reversal = accuracy on the run's own held-out sentences\n")
    print(
        "| recipe | seed | budget (clm's time to target) | clm reversal | encoder reversal | adjacent swap | target |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        met = "met" if r["reversal"] >= args.encoder_target else "not met"
        print(
            f"| {r['recipe']} | {r['seed']} | {r['minutes']:g} min | {r['clm_reversal']:.3f} | {r['reversal']:.3f} | "
            f"{r['swap']:.3f} | {met} |"
        )
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        mine = [r for r in rows if r["recipe"] == recipe]
        ratio_line(
            f"word_order_target {args.corpus} {recipe} reversal at the clm's time to {args.clm_target}",
            statistics.fmean(r["reversal"] for r in mine),
            args.encoder_target,
            "accuracy",
            masklab=recipe,
            baseline="target",
        )


if __name__ == "__main__":
    main()
