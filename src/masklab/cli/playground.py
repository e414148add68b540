"""The `playground` command: a local web page to poke one or two runs (extra `masklab[playground]`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from masklab.errors import UserError


def playground(
    run: Path = typer.Argument(
        ..., help="A run directory (or a save_pretrained directory, or a study: its first finished trial)."
    ),
    run2: Optional[Path] = typer.Argument(None, help="A second run: every view shows both answers side by side."),
    port: int = typer.Option(7860, "--port", help="Port to serve on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs --auth."),
    auth: str = typer.Option(
        "",
        "--auth",
        help="USER:PASSWORD for the page (required with --host 0.0.0.0); or set MASKLAB_PLAYGROUND_AUTH.",
        show_default=False,
    ),
    text: str = typer.Option("The state of the [MASK] is strong.", "--text", help="The example the page opens with."),
) -> None:
    """Open a page on 127.0.0.1 with fill-mask, mask preview, generation, sentence scores and the run's curves."""
    from masklab.playground.serve import parse_auth, quiet_gradio

    quiet_gradio()
    credentials = parse_auth(auth or os.environ.get("MASKLAB_PLAYGROUND_AUTH", ""))
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError("the playground needs Gradio: pip install 'masklab[playground]'") from None
    from masklab.playground.app import build_app
    from masklab.playground.models import load_runs
    from masklab.playground.serve import check_address, launch

    check_address(host, port, credentials)  # before loading models: a busy port should not cost a model load
    runs = load_runs([run] + ([run2] if run2 else []))
    app = build_app(runs, text)
    shown = f"[{host}]" if ":" in host else host
    print(f"masklab playground: http://{shown}:{port}  (Ctrl+C stops it)", flush=True)
    launch(app, host, port, credentials, warned=True)  # the early check said it once


def register(app: typer.Typer) -> None:
    app.command("playground")(playground)
