"""The `finetune` and `compare` commands: a thin layer over masklab.finetune and masklab.report.

`register(app)` adds both to masklab's typer app. Flags map onto FinetuneConfig fields; `--set key=value`
reaches every other field. Heavy imports happen inside the commands so `masklab --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

FLAGS = (
    "task",
    "init",
    "arch",
    "mode",
    "top_k",
    "llrd",
    "lr",
    "epochs",
    "max_steps",
    "max_train_examples",
    "seed",
    "seeds",
)  # options below named as their FinetuneConfig fields: passed on when set explicitly


def finetune(
    task: Optional[str] = typer.Option(
        None,
        "--task",
        "-t",
        help="builtin:rt-sentiment | builtin:sotu-era | builtin:sotu-party | builtin:fa-topic, "
        "a CSV/TSV/JSONL/parquet file (text + label columns) or a CoNLL file (token tag per line).",
    ),
    init: Optional[str] = typer.Option(
        None,
        "--init",
        "-i",
        help="random | builtin:minilm | a masklab pretraining run | a Hugging Face checkpoint directory.",
    ),
    arch: Optional[str] = typer.Option(
        None,
        "--arch",
        help="With --init random: a preset (tiny/mini/small/medium/base) or a "
        "checkpoint whose architecture and tokenizer get fresh weights (e.g. builtin:minilm).",
    ),
    mode: Optional[str] = typer.Option(None, "--mode", "-m", help="probe | top-k | full | gradual"),
    top_k: Optional[int] = typer.Option(
        None, "--top-k", help="With --mode top-k: encoder layers to train under the head."
    ),
    llrd: Optional[float] = typer.Option(
        None, "--llrd", help="Layer-wise learning-rate decay factor (e.g. 0.9; 1 = off)."
    ),
    lr: Optional[float] = typer.Option(
        None, "--lr", help="Peak learning rate (default: 1e-3 for probe, 5e-5 otherwise)."
    ),
    epochs: Optional[float] = typer.Option(None, "--epochs"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps (overrides --epochs)."),
    max_train_examples: Optional[int] = typer.Option(None, "--max-train-examples", help="Train on a seeded subsample."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Repeat with this many seeds; report mean ± std."),
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="Fine-tuning config YAML (a flat mapping of fields)."
    ),
    set_: List[str] = typer.Option(
        [], "--set", "-s", help="Any other config field, e.g. --set batch_size=32 (repeatable)."
    ),
    out: Path = typer.Option(Path("runs/finetune"), "--out", "-o", help="Run directory to write."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in --out: finished seeds are kept, the "
        "interrupted one continues from its checkpoint exactly.",
    ),
    stop_at_step: Optional[int] = typer.Option(
        None,
        "--stop-at-step",
        help="Pause the current seed after this step with a checkpoint; continue later with --resume.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Fine-tune (or probe) an encoder on a labelled task; record learning curves and per-layer change.

    Starts from random or pretrained weights; modes probe / top-k / full / gradual. Mix masked-LM batches
    into the loss with --set objectives.mlm=0.5, or pull the weights towards the start with
    --set regularizers.l2sp=0.01.

    Several processes: `accelerate launch --multi_gpu --num_processes N -m masklab.cli finetune ...`
    (gloo on CPU-only machines; not `--cpu`, which starts one process whatever N is).
    """
    from accelerate import PartialState

    from masklab.finetune.config import load_finetune_config
    from masklab.finetune.run import run_finetune
    from masklab.report.compare import markdown_table
    from masklab.report.runs import Run
    from masklab.runtime import warn_process_shortfall

    given = locals()
    warn_process_shortfall()
    flags = [f"{name}={given[name]}" for name in FLAGS if given[name] is not None]
    if resume and config is None and (out / "config.yaml").exists():
        config = out / "config.yaml"  # the run's own settings, as pretrain --resume does
    cfg = load_finetune_config(str(config) if config else None, [*flags, *set_])
    summary = run_finetune(cfg, out, show_progress=not quiet, resume=resume, halt_at_step=stop_at_step)
    if not PartialState().is_main_process:  # every process returns the summary; one prints it
        return
    if summary is None:
        typer.echo(f"paused at step {stop_at_step}; continue with: masklab finetune --out {out} --resume")
        return
    typer.echo(markdown_table([Run(out.name, out, summary, [])]))
    typer.echo(
        f"wrote {out}/summary.json, config.yaml, learning_curves.png, layer_change.png and "
        f"{', '.join(f'{out}/seed-{cfg.seed + s}/' for s in range(cfg.seeds))} (metrics.jsonl, summary.json, model/)"
    )


def compare(
    runs: List[Path] = typer.Argument(
        ..., help="Run directories written by masklab finetune, or by masklab pretrain (any objective)."
    ),
    out: Path = typer.Option(
        Path("compare"), "--out", "-o", help="Directory for compare.md, the PNGs and compare.html."
    ),
):
    """Put runs side by side in one offline report (compare.md, PNGs, compare.html).

    Fine-tuning runs: test metrics, learning curves, per-layer change. Pretraining runs of any objective:
    the shared yardsticks from `masklab evaluate` (minimal pairs, cloze, downstream, generation, cost) as
    mean ± std over seeds, loss curves against tokens and seconds, and a plain-language reading."""
    from masklab.report.compare import compare_runs

    typer.echo(compare_runs(runs, out))
    typer.echo(f"wrote {out}/compare.md, {out}/compare.html and the plots in {out}/")


def register(app: typer.Typer) -> None:
    app.command("finetune")(finetune)
    app.command("compare")(compare)
