"""`masklab quickstart`: the whole path on the built-in corpus, in a few minutes on a laptop CPU."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import typer

from masklab.config import load_config

EXAMPLES = [
    "the [MASK] of the union is strong.",
    "we must protect the [MASK] of all americans.",
    "the congress of the united [MASK] .",
    "i ask the congress to pass this [MASK] .",
]


def quickstart_config_path() -> Path:
    return Path(str(resources.files("masklab") / "configs" / "quickstart.yaml"))


def run_quickstart(out: Path, overrides=()) -> dict:
    from masklab.evaluate.masked import fill_mask
    from masklab.models.checkpoint import load_masked_lm
    from masklab.pretrain.run import pretrain

    cfg = load_config(quickstart_config_path(), overrides)
    if (out / "summary.json").exists():
        typer.echo(f"{out} already holds a finished quickstart (shown below); remove it or pass --out to train again")
        summary = json.loads((out / "summary.json").read_text())
    else:  # a quickstart killed half-way continues from its last checkpoint
        summary = pretrain(cfg, out, resume=(out / "checkpoint").exists())
    typer.echo("")
    typer.echo(f"masked-token accuracy {summary['masked_accuracy']:.3f} vs unigram baseline {summary['unigram_accuracy']:.3f} "
               f"(masked perplexity {summary['masked_perplexity']:.1f}, pseudo-perplexity {summary['pseudo_perplexity']:.1f}); "
               f"{summary['train_tokens']:,} training tokens at {summary['tokens_per_second']:,.0f} tokens/s ({summary['precision']})")
    model, tokenizer = load_masked_lm(out)
    typer.echo("\nfill-mask examples:")
    for text in EXAMPLES:
        candidates = fill_mask(model, tokenizer, text, top_k=5)[0]
        typer.echo(f"  {text}\n    -> " + "  ".join(f"{tok} ({p:.2f})" for tok, p in candidates))
    typer.echo(f"\nwrote: {out}/config.yaml  {out}/metrics.jsonl  {out}/summary.json  {out}/checkpoint/ (model + tokenizer)")
    typer.echo(f'try:   masklab fill-mask {out} "the [MASK] of the union"')
    return summary
