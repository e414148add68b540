"""The `evaluate` and `fill-mask` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from masklab.cli.common import SET_HELP, print_summary


def evaluate(
    checkpoint: Path = typer.Argument(..., help="A masklab run directory or a Hugging Face checkpoint directory."),
    corpus: Optional[str] = typer.Option(
        None, "--corpus", "-c", help="Evaluate on all of this corpus instead of the run's validation split."
    ),
    set_: List[str] = typer.Option([], "--set", "-s", help=SET_HELP),
    pairs: Optional[str] = typer.Option(
        None,
        "--pairs",
        help="Minimal pairs: a BLiMP-format JSONL file "
        "(sentence_good, sentence_bad[, phenomenon]), builtin:en / builtin:fa, or from:CORPUS: held-out "
        "sentences of any corpus (the run's own validation documents when it trained on it) against their "
        "reversal and an adjacent-word swap, up to eval.corpus_pairs (500) of each, drawn by eval.seed.",
    ),
    cloze: int = typer.Option(0, "--cloze", help="Cloze items (5-way fill-in of a held-out word); 0 = skip."),
    generate: int = typer.Option(
        0, "--generate", help="Top-p samples for distinct-n / repetition (clm, hybrid, seq2seq); 0 = skip."
    ),
    downstream: Optional[str] = typer.Option(
        None,
        "--downstream",
        help="A labelled task (builtin:sotu-era, a file): test "
        "accuracy of a probe and of full fine-tuning from the checkpoint.",
    ),
    downstream_steps: int = typer.Option(
        300, "--downstream-steps", help="Optimizer steps of each downstream fine-tuning."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
):
    """A checkpoint of any objective: its held-out figures, sentence scores, and the yardsticks every
    objective shares (minimal pairs, cloze, generation, cost). Merged into RUN/evaluation.json."""
    from masklab.evaluate.run import evaluate_checkpoint

    metrics = evaluate_checkpoint(
        checkpoint,
        corpus,
        set_,
        show_progress=not as_json,
        pairs=pairs,
        cloze=cloze,
        generate=generate,
        downstream=downstream,
        downstream_steps=downstream_steps,
    )
    if as_json:
        typer.echo(json.dumps(metrics))
    else:
        print_summary(metrics, f"evaluation of {checkpoint}")


def fill_mask(
    checkpoint: Path = typer.Argument(..., help="A masklab run directory or a Hugging Face checkpoint directory."),
    text: str = typer.Argument(..., help="Text with [MASK] where the model should fill in."),
    top_k: int = typer.Option(5, "--top-k", "-k"),
):
    """Print the top-k fillers, with probabilities, for each [MASK] in the text."""
    from masklab.generate.fillmask import fill_mask as fill
    from masklab.models.checkpoint import load_masked_lm

    model, tokenizer = load_masked_lm(checkpoint)
    filled = fill(model, tokenizer, text, top_k)
    if filled.notice:
        typer.echo(f"note: {filled.notice}")
    for n, candidates in enumerate(filled.proposals, 1):
        typer.echo(f"[MASK] #{n}: " + "  ".join(f"{c['token_str'].strip()} ({c['score']:.3f})" for c in candidates))


def register(app: typer.Typer) -> None:
    app.command()(evaluate)
    app.command("fill-mask")(fill_mask)
