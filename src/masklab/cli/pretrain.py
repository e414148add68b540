"""The `pretrain`, `quickstart` and `tokenizer train` commands."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from masklab.cli.common import SET_HELP, print_summary

tokenizer_app = typer.Typer(no_args_is_help=True, help="Train tokenizers.")


def pretrain(
    config: Optional[Path] = typer.Argument(None, help="Run config YAML (optional: defaults + --set make a run)."),
    set_: List[str] = typer.Option([], "--set", "-s", help=SET_HELP),
    out: Path = typer.Option(Path("runs/pretrain"), "--out", "-o", help="Run directory to write."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    stop_at_step: Optional[int] = typer.Option(
        None,
        "--stop-at-step",
        help="Pause after this step with a checkpoint "
        "(the schedule still plans for train.max_steps); continue later with --resume.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Pretrain a language model from scratch (or continue a checkpoint) on a corpus: masked (default),
    causal, sequence-to-sequence, hybrid or ELECTRA, with --set train.objective=mlm|clm|seq2seq|hybrid|electra.

    Defaults train the recipe masklab measured best on small budgets (see the README); any setting is
    one --set away. Several processes: `accelerate launch --multi_gpu --num_processes N -m masklab.cli
    pretrain ...` (or `torchrun --nproc_per_node N -m masklab.cli pretrain ...`); on CPU-only machines
    the processes use gloo. Not `--cpu`: accelerate then starts one process whatever N is.
    """
    from masklab.pretrain.run import pretrain as run
    from masklab.pretrain.run import resolve_run_config
    from masklab.runtime import warn_process_shortfall

    warn_process_shortfall()
    cfg = resolve_run_config(str(config) if config else None, set_, out, resume)
    summary = run(cfg, out, resume=resume, halt_at_step=stop_at_step, show_progress=not quiet)
    if summary["is_main_process"]:
        print_summary(summary, f"pretraining run {out}")
        typer.echo(f"wrote {out}/config.yaml, {out}/metrics.jsonl, {out}/summary.json, {out}/checkpoint/")


def tokenizer_train(
    corpus: str = typer.Option("builtin:sotu", "--corpus", "-c", help="File, directory, builtin:NAME or hf:NAME."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to save the tokenizer to."),
    model: str = typer.Option("wordpiece", "--model", help="wordpiece | bpe | unigram"),
    vocab_size: int = typer.Option(16000, "--vocab-size"),
    lowercase: bool = typer.Option(True, "--lowercase/--no-lowercase"),
    config: Optional[Path] = typer.Option(
        None, "--config", help="Take data.* settings (cleaning, columns) from a run config."
    ),
    set_: List[str] = typer.Option([], "--set", "-s", help=SET_HELP),
):
    """Train a WordPiece / BPE / Unigram tokenizer that transformers.AutoTokenizer loads."""
    from masklab.config import load_config
    from masklab.data.prepare import prepare_corpus, training_lines
    from masklab.data.tokenizer import train_tokenizer

    cfg = load_config(
        str(config) if config else None,
        [
            f"data.corpus={corpus}",
            f"tokenizer.model={model}",
            f"tokenizer.vocab_size={vocab_size}",
            f"tokenizer.lowercase={str(lowercase).lower()}",
            *set_,
        ],
    )
    prepared = prepare_corpus(cfg.data)
    tok = train_tokenizer(training_lines(prepared), cfg.tokenizer, out)
    typer.echo(
        f"trained a {cfg.tokenizer.model} tokenizer with {len(tok):,} tokens (100 of them seq2seq sentinels) on "
        f"{prepared.stats['train_docs']:,} documents; saved to {out}"
    )


def quickstart(
    out: Path = typer.Option(Path("runs/quickstart"), "--out", "-o", help="Run directory to write."),
    set_: List[str] = typer.Option([], "--set", "-s", help=SET_HELP),
):
    """Train a tokenizer and a tiny ModernBERT masked LM on the built-in speeches, evaluate it, try fill-mask.

    About five minutes on a 2-core laptop CPU; the run is scored against the unigram baseline on the
    same validation masks. A killed quickstart continues where it stopped.
    """
    from masklab.pretrain.quickstart import run_quickstart

    run_quickstart(out, set_)


def models(
    objective: List[str] = typer.Option(
        [], "--objective", help="mlm | clm | seq2seq | hybrid | electra (repeatable; default all)."
    ),
    preset: List[str] = typer.Option(
        [], "--preset", "-p", help="tiny | mini | small | medium | base (repeatable; default all)."
    ),
    vocab_size: int = typer.Option(
        16100, "--vocab-size", help="Tokenizer size the counts assume (masklab's default: 16,000 + 100 sentinels)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
):
    """The models each objective trains at each preset, with total and non-embedding parameters.

    Every family but the classic BERT is matched to the ModernBERT masked LM of the same preset by its
    feed-forward width (non-embedding parameters within a fraction of a percent)."""
    import json

    from rich.table import Table

    from masklab.cli.common import console
    from masklab.errors import UserError
    from masklab.models.build import parameter_table
    from masklab.models.presets import PRESETS
    from masklab.objective_records import RECORDS

    for name, valid in (("objective", RECORDS), ("preset", PRESETS)):
        unknown = [v for v in (objective if name == "objective" else preset) if v not in valid]
        if unknown:
            raise UserError(f"unknown --{name} {unknown[0]!r}; choose from {', '.join(valid)}")
    rows = parameter_table(preset or list(PRESETS), objective or list(RECORDS), vocab_size)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table(title=f"parameters at vocabulary {vocab_size:,} (reference: modernbert at the same preset)")
    for column in ("preset", "objective", "architecture", "total", "non-embedding", "vs reference"):
        table.add_column(column, justify="right" if column in ("total", "non-embedding", "vs reference") else "left")
    for r in rows:
        note = " classic" if r["architecture"] == "bert" else ""
        table.add_row(
            r["preset"],
            r["objective"],
            r["architecture"],
            f"{r['total']:,}",
            f"{r['non_embedding']:,}",
            f"{100 * r['vs_reference']:+.2f}%{note}",
        )
    console().print(table)


def register(app: typer.Typer) -> None:
    app.command()(pretrain)
    app.command()(models)
    app.command()(quickstart)
    tokenizer_app.command("train")(tokenizer_train)
    app.add_typer(tokenizer_app, name="tokenizer")
