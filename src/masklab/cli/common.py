"""What every command group shares: the --set help, a console, and the summary table."""

from __future__ import annotations

SET_HELP = "Override a config value, e.g. --set train.lr=3e-4 (repeatable)."


def console():
    from rich.console import Console

    return Console()


def _cell(value) -> str:
    return f"{value:,.4f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)


def print_summary(summary: dict, title: str) -> None:
    """Every scalar of `summary` as a row (one level of nested mappings as KEY.NAME); lists are left to --json."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if isinstance(value, dict):
            for name, inner in value.items():
                if isinstance(inner, (int, float, str)):
                    table.add_row(f"{key}.{name}", _cell(inner))
        elif isinstance(value, (int, float, str)) and key not in ("is_main_process",):
            table.add_row(key, _cell(value))
    console().print(table)
