"""Which pretraining recipe should `masklab pretrain` use when a user changes nothing but the corpus?

Each recipe is a set of --set overrides over masklab's config defaults; each trial is an ordinary
`masklab pretrain` run in its own process with a wall-clock budget (`train.max_minutes`: the
learning-rate schedule follows elapsed time), scored on the run's own validation split with fixed
masks: masked accuracy, and its gain over the unigram baseline on the same masks (a model that does
not beat the unigram baseline has learned nothing about context). Finished trials are kept in
--out and never re-run, so an interrupted comparison resumes.

    # the README table: 3 corpora, 2 and 10 min, 3 seeds
    python benchmarks/default_recipe.py
    python benchmarks/default_recipe.py --budgets 2 --seeds 0 --corpora builtin:fa-chat    # one cell
    python benchmarks/default_recipe.py --smoke                           # seconds: does it still run?

Run it on an otherwise idle machine: the budget is wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from machine import SMOKE_DOCUMENTS, TEMP_DIR, parse_args, ratio_line

# recipe -> overrides (the mini preset unless a recipe names another). "bert-5e-4" is masklab's earlier
# default (post-LN BERT, BERT-era learning rate); "modernbert-tiny-3e-3" is the quickstart's recipe.
RECIPES = {
    "bert-5e-4": ["model.architecture=bert", "model.preset=mini", "train.lr=5e-4"],
    "modernbert-3e-3": ["model.architecture=modernbert", "model.preset=mini", "train.lr=3e-3"],
    "modernbert-1e-3": ["model.architecture=modernbert", "model.preset=mini", "train.lr=1e-3"],
    "bert-tiny-1e-3": ["model.architecture=bert", "model.preset=tiny", "train.lr=1e-3"],
    "modernbert-tiny-3e-3": ["model.architecture=modernbert", "model.preset=tiny", "train.lr=3e-3"],
}
# Per corpus: what makes its validation score meaningful. The Persian utterances are short (half are
# under 20 characters) and few, so keep short ones and hold out a larger share.
CORPUS_SETTINGS = {"builtin:fa-chat": ["data.min_chars=5", "data.val_fraction=0.2"]}
COMMON = [
    "train.max_steps=1000000",
    "train.eval_every=0",
    "train.save_every=0",
    "eval.max_blocks=256",
    "eval.pppl_sequences=4",
]


def trial(out: Path, corpus: str, recipe: str, minutes: float, seed: int, extra: list[str] = ()) -> dict:
    run_dir = out / f"{corpus.replace(':', '-').replace('/', '_')}-{minutes:g}min-{recipe}-seed{seed}"
    if not (run_dir / "summary.json").exists():
        if run_dir.exists():  # an interrupted trial restarts: a time budget cannot be resumed fairly
            subprocess.run(["rm", "-rf", str(run_dir)], check=True)
        sets = [
            f"data.corpus={corpus}",
            *CORPUS_SETTINGS.get(corpus, []),
            f"train.max_minutes={minutes}",
            f"train.seed={seed}",
            *COMMON,
            *RECIPES[recipe],
            *extra,
        ]
        args = [a for s in sets for a in ("--set", s)]
        done = subprocess.run(
            [sys.executable, "-m", "masklab.cli", "pretrain", "--quiet", "--out", str(run_dir), *args],
            capture_output=True,
            text=True,
            env=os.environ,
        )
        if done.returncode != 0:
            raise SystemExit(f"trial {run_dir.name} failed:\n{done.stderr[-2000:]}")
    s = json.loads((run_dir / "summary.json").read_text())
    return {
        "corpus": corpus,
        "recipe": recipe,
        "minutes": minutes,
        "seed": seed,
        "masked_accuracy": s["masked_accuracy"],
        "unigram_accuracy": s["unigram_accuracy"],
        "gain": s["masked_accuracy"] - s["unigram_accuracy"],
        "steps": s["steps"],
        "train_tokens": s["train_tokens"],
        "precision": s["precision"],
    }


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {sd:.3f}"


def table(rows: list[dict]) -> str:
    lines = [
        "| corpus | budget | recipe | seeds | masked acc | unigram acc | gain over unigram | steps |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    keys = sorted(
        {(r["corpus"], r["minutes"], r["recipe"]) for r in rows}, key=lambda k: (k[0], k[1], list(RECIPES).index(k[2]))
    )
    for corpus, minutes, recipe in keys:
        cell = [r for r in rows if (r["corpus"], r["minutes"], r["recipe"]) == (corpus, minutes, recipe)]
        lines.append(
            f"| {corpus} | {minutes:g} min | {recipe} | {len(cell)} | {mean_sd([r['masked_accuracy'] for r in cell])} "
            "| "
            f"{mean_sd([r['unigram_accuracy'] for r in cell])} | **{mean_sd([r['gain'] for r in cell])}** | "
            f"{statistics.fmean(r['steps'] for r in cell):,.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", nargs="+", default=["builtin:sotu", "builtin:fa-chat", "builtin:rt"])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--budgets", nargs="+", type=float, default=[2, 10], help="minutes per trial")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/default-recipe"))
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra `masklab pretrain --set` for every trial (repeatable), after the recipe's own",
    )
    args = parse_args(
        parser,
        smoke=dict(
            corpora=["builtin:sotu"],
            recipes=["bert-tiny-1e-3", "modernbert-tiny-3e-3"],
            budgets=[0.03],
            seeds=[0],
            out=TEMP_DIR,
            set=[
                f"data.max_documents={SMOKE_DOCUMENTS}",
                "train.batch_size=8",
                "eval.max_blocks=8",
                "eval.pppl_sequences=2",
            ],
        ),
    )

    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for minutes in args.budgets:
        for corpus in args.corpora:
            for seed in args.seeds:
                for recipe in args.recipes:
                    rows.append(trial(args.out, corpus, recipe, minutes, seed, args.set))
                    print(json.dumps(rows[-1]), flush=True)
    (args.out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(
        f"\nmasklab pretrain with config defaults apart from each recipe's overrides; {os.cpu_count()} CPUs; "
        "budget = wall-clock minutes of training\n"
    )
    print(table(rows) + "\n")
    for corpus, minutes, recipe in dict.fromkeys((r["corpus"], r["minutes"], r["recipe"]) for r in rows):
        cell = [r for r in rows if (r["corpus"], r["minutes"], r["recipe"]) == (corpus, minutes, recipe)]
        ratio_line(
            f"default_recipe {corpus} {minutes:g} min {recipe} masked accuracy vs unigram",
            statistics.fmean(r["masked_accuracy"] for r in cell),
            statistics.fmean(r["unigram_accuracy"] for r in cell),
            "accuracy",
            masklab=recipe,
            baseline="unigram baseline",
        )


if __name__ == "__main__":
    main()
