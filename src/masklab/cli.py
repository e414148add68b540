"""masklab's command line: a thin typer layer over importable functions.

Heavy imports (torch, transformers) happen inside the commands so `masklab --help` is instant.
A `UserError` anywhere becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from masklab.cli_finetune import register as register_finetune
from masklab.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Pretrain, evaluate and query masked language models.")
tokenizer_app = typer.Typer(no_args_is_help=True, help="Train tokenizers.")
app.add_typer(tokenizer_app, name="tokenizer")
register_finetune(app)

SET_HELP = "Override a config value, e.g. --set train.lr=3e-4 (repeatable)."


def _console():
    from rich.console import Console

    return Console()


def _print_summary(summary: dict, title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("masked_accuracy", "unigram_accuracy", "masked_loss", "masked_perplexity", "pseudo_perplexity",
                "train_tokens", "tokens_per_second", "wall_seconds", "steps", "precision", "parameters"):
        if key in summary:
            value = summary[key]
            table.add_row(key, f"{value:,.4f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value))
    _console().print(table)


@app.command()
def pretrain(
    config: Optional[Path] = typer.Argument(None, help="Run config YAML (optional: defaults + --set make a run)."),
    set_: List[str] = typer.Option([], "--set", "-s", help=SET_HELP),
    out: Path = typer.Option(Path("runs/pretrain"), "--out", "-o", help="Run directory to write."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    stop_at_step: Optional[int] = typer.Option(None, "--stop-at-step", help="Pause after this step with a checkpoint "
                                               "(the schedule still plans for train.max_steps); continue later with --resume."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Pretrain a masked language model from scratch (or continue a checkpoint) on a corpus.

    Several processes: `accelerate launch --multi_gpu --num_processes N -m masklab.cli pretrain ...`
    (or torchrun); on CPU-only machines the processes use gloo.
    """
    from masklab.pretrain import pretrain as run, resolve_run_config

    cfg = resolve_run_config(str(config) if config else None, set_, out, resume)
    summary = run(cfg, out, resume=resume, halt_at_step=stop_at_step, show_progress=not quiet)
    if summary["is_main_process"]:
        _print_summary(summary, f"pretraining run {out}")
        typer.echo(f"wrote {out}/config.yaml, {out}/metrics.jsonl, {out}/summary.json, {out}/checkpoint/")


@tokenizer_app.command("train")
def tokenizer_train(
    corpus: str = typer.Option("builtin:sotu", "--corpus", "-c", help="File, directory, builtin:NAME or hf:NAME."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to save the tokenizer to."),
    model: str = typer.Option("wordpiece", "--model", help="wordpiece | bpe | unigram"),
    vocab_size: int = typer.Option(16000, "--vocab-size"),
    lowercase: bool = typer.Option(True, "--lowercase/--no-lowercase"),
    config: Optional[Path] = typer.Option(None, "--config", help="Take data.* settings (cleaning, columns) from a run config."),
    set_: List[str] = typer.Option([], "--set", "-s", help=SET_HELP),
):
    """Train a WordPiece / BPE / Unigram tokenizer that transformers.AutoTokenizer loads."""
    from masklab.config import load_config
    from masklab.data.prepare import prepare_corpus, training_lines
    from masklab.data.tokenizer import train_tokenizer

    cfg = load_config(str(config) if config else None,
                      [f"data.corpus={corpus}", f"tokenizer.model={model}", f"tokenizer.vocab_size={vocab_size}",
                       f"tokenizer.lowercase={str(lowercase).lower()}", *set_])
    prepared = prepare_corpus(cfg.data)
    tok = train_tokenizer(training_lines(prepared), cfg.tokenizer, out)
    typer.echo(f"trained a {cfg.tokenizer.model} tokenizer with {len(tok):,} tokens on {prepared.stats['train_docs']:,} "
               f"documents; saved to {out}")


@app.command()
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A masklab run directory or a Hugging Face checkpoint directory."),
    corpus: Optional[str] = typer.Option(None, "--corpus", "-c", help="Evaluate on all of this corpus instead of the run's validation split."),
    set_: List[str] = typer.Option([], "--set", "-s", help=SET_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
):
    """Masked accuracy, masked perplexity, pseudo-perplexity and the unigram baseline on validation text."""
    from masklab.evaluation_run import evaluate_checkpoint

    metrics = evaluate_checkpoint(checkpoint, corpus, set_, show_progress=not as_json)
    if as_json:
        typer.echo(json.dumps(metrics))
    else:
        _print_summary(metrics, f"evaluation of {checkpoint}")


@app.command("fill-mask")
def fill_mask_cmd(
    checkpoint: Path = typer.Argument(..., help="A masklab run directory or a Hugging Face checkpoint directory."),
    text: str = typer.Argument(..., help='Text with [MASK] where the model should fill in.'),
    top_k: int = typer.Option(5, "--top-k", "-k"),
):
    """Print the top-k fillers, with probabilities, for each [MASK] in the text."""
    from masklab.evaluation_run import load_checkpoint
    from masklab.evaluate import fill_mask

    model, tokenizer = load_checkpoint(checkpoint)
    for n, candidates in enumerate(fill_mask(model, tokenizer, text, top_k), 1):
        typer.echo(f"[MASK] #{n}: " + "  ".join(f"{tok} ({p:.3f})" for tok, p in candidates))


@app.command("mask-preview")
def mask_preview_cmd(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Run config YAML (data, tokenizer and masking sections)."),
    n: int = typer.Option(5, "--n", help="Sample blocks to show."),
    html: Path = typer.Option(Path("mask-preview.html"), "--html", help="Write the same preview as an HTML page here."),
    set_: List[str] = typer.Option([], "--set", "-s", help=SET_HELP),
):
    """Show corpus samples as the configured masker hides them, with measured masking statistics."""
    from masklab.config import load_config
    from masklab.preview import mask_preview, print_preview, write_html

    if n < 1:
        raise UserError("--n must be at least 1")
    cfg = load_config(str(config) if config else None, set_)
    preview = mask_preview(cfg, n)
    print_preview(preview, cfg.masking.strategy, _console())
    write_html(preview, cfg.masking.strategy, html)
    typer.echo(f"wrote {html}")


@app.command()
def quickstart(
    out: Path = typer.Option(Path("runs/quickstart"), "--out", "-o", help="Run directory to write."),
    set_: List[str] = typer.Option([], "--set", "-s", help=SET_HELP),
):
    """Train a tokenizer and a small BERT on the built-in State of the Union corpus, evaluate it, try fill-mask."""
    from masklab.quickstart import run_quickstart

    run_quickstart(out, set_)


def main() -> None:
    try:
        app()
    except UserError as exc:
        print(f"masklab: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
