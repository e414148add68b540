"""The `continual` command: a thin layer over masklab.continual (flags map onto ContinualConfig fields)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from masklab.errors import UserError

FLAGS = ("init", "method", "seeds", "seed", "lr", "epochs", "max_steps")


def _halt(text: Optional[str]) -> tuple[int, int] | None:
    if text is None:
        return None
    stage, _, step = text.partition(":")
    if not (stage.isdigit() and step.isdigit() and int(stage) >= 1):
        raise UserError(f"--stop-at expects STAGE:STEP, e.g. 2:50 (got {text!r})")
    return int(stage), int(step)


def continual(
    tasks: Optional[str] = typer.Option(
        None,
        "--tasks",
        "-t",
        help="Tasks in training order, comma-separated (anything "
        "finetune --task accepts), or builtin:seq-en (rt-sentiment, sotu-era, sotu-party).",
    ),
    init: Optional[str] = typer.Option(
        None, "--init", "-i", help="random | builtin:minilm | a masklab run | an HF checkpoint."
    ),
    method: Optional[str] = typer.Option(
        None,
        "--method",
        "-m",
        help="naive | joint | ewc | l2sp | recadam | replay | mlm-mix | "
        "lora | ia3 | prompt | prefix | freeze, or several joined by + (ewc+replay).",
    ),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Repeat with this many seeds; report mean ± std."),
    seed: Optional[int] = typer.Option(None, "--seed"),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate per stage (default: the method's)."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Passes over each task per stage."),
    max_steps: Optional[int] = typer.Option(
        None, "--max-steps", help="Optimizer steps per stage (overrides --epochs)."
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="Continual config YAML (a flat mapping of fields)."
    ),
    set_: List[str] = typer.Option(
        [], "--set", "-s", help="Any other field, e.g. --set ewc_lambda=100 --set lora_r=4."
    ),
    out: Path = typer.Option(Path("runs/continual"), "--out", "-o", help="Directory to write."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the sequence in --out at the stage and step it stopped."
    ),
    stop_at: Optional[str] = typer.Option(
        None, "--stop-at", help="Pause at STAGE:STEP with a checkpoint (continue with --resume)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Train a sequence of tasks, measure forgetting after every stage, and compare the cures.

    Writes DIR/summary.json (accuracy matrix, average accuracy, forgetting, BWT, FWT, probe-recovered
    accuracy, masked-LM loss on general text before and after, seconds per stage), report.md and
    report.html. Put several methods side by side with `masklab compare DIR...`."""
    from masklab.continual.config import load_continual_config
    from masklab.continual.run import run_continual
    from masklab.report.continual import matrix_markdown, summary_markdown

    given = locals()
    flags = [f"{name}={given[name]}" for name in FLAGS if given[name] is not None]
    if tasks is not None:
        flags.append(f"tasks={tasks}")
    if resume and config is None and (out / "config.yaml").exists():
        config = out / "config.yaml"
    cfg = load_continual_config(str(config) if config else None, [*flags, *set_])
    summary = run_continual(cfg, out, show_progress=not quiet, resume=resume, halt=_halt(stop_at))
    if summary is None:
        typer.echo(f"paused at {stop_at}; continue with: masklab continual --out {out} --resume")
        return
    typer.echo(matrix_markdown(summary) + "\n\n" + summary_markdown(summary))
    typer.echo(f"wrote {out}/summary.json, {out}/report.md and {out}/report.html")


def register(app: typer.Typer) -> None:
    app.command("continual")(continual)
