"""What every command group shares: the --set help, a console, and the summary table."""

from __future__ import annotations

SET_HELP = "Override a config value, e.g. --set train.lr=3e-4 (repeatable)."


def console():
    from rich.console import Console

    return Console()


def print_summary(summary: dict, title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("masked_accuracy", "unigram_accuracy", "masked_loss", "masked_perplexity", "pseudo_perplexity",
                "train_tokens", "tokens_per_second", "wall_seconds", "steps", "precision", "parameters"):
        if key in summary:
            value = summary[key]
            table.add_row(key, f"{value:,.4f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value))
    console().print(table)
