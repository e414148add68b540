"""The `mask-preview` command."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from masklab.cli.common import SET_HELP, console
from masklab.errors import UserError


def mask_preview(
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="Run config YAML (data, tokenizer and masking sections)."
    ),
    n: int = typer.Option(5, "--n", help="Sample blocks to show."),
    html: Path = typer.Option(Path("mask-preview.html"), "--html", help="Write the same preview as an HTML page here."),
    set_: List[str] = typer.Option([], "--set", "-s", help=SET_HELP),
):
    """Show corpus samples as the configured masker hides them, with measured masking statistics."""
    from masklab.config import load_config
    from masklab.masking.preview import mask_preview as preview_of
    from masklab.masking.preview import print_preview, write_html

    if n < 1:
        raise UserError("--n must be at least 1")
    cfg = load_config(str(config) if config else None, set_)
    preview = preview_of(cfg, n)
    print_preview(preview, cfg.masking.strategy, console())
    write_html(preview, cfg.masking.strategy, html)
    typer.echo(f"wrote {html}")


def register(app: typer.Typer) -> None:
    app.command("mask-preview")(mask_preview)
