"""Launching the playground safely: loopback unless asked, a password when not, a free port, nothing shared.

Gradio's analytics and version check are off (set before gradio is imported), share links are never
made, the theme uses the system's fonts (no font CDN), and no file is served: every image is inline.
Nor is one taken: the page has no file input, so `/gradio_api/upload` refuses every byte (413).
"""

from __future__ import annotations

import os
import socket
import sys

from masklab.errors import UserError
from masklab.playground.models import hub_offline
from masklab.playground.render import CSS

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_UPLOAD_BYTES = 0  # no view takes a file: an upload could only fill the disk (Gradio answers 413 above this)


def quiet_gradio() -> None:
    """Before gradio (and with it huggingface_hub) is imported: no analytics, no telemetry, no update
    check, no hub access (the hub library reads these once, at import)."""

    hub_offline()
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def any_free_port(host: str = "127.0.0.1") -> int:
    """A port the system says is free now (for pages started by scripts and tests)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def free_port(host: str, start: int) -> int:
    for port in range(start + 1, start + 200):
        if port_free(host, port):
            return port
    raise UserError(f"no free port between {start + 1} and {start + 199} on {host}; pass --port")


def parse_auth(auth: str) -> tuple[str, str] | None:
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise UserError("--auth must be USER:PASSWORD (or set MASKLAB_PLAYGROUND_AUTH)")
    return user, password


def check_address(host: str, port: int, auth: tuple[str, str] | None, warn: bool = True) -> None:
    """Refuse a bad port, a busy one, or another machine's access without a password; `warn`: say once
    that the page is open to other machines (the command checks early, then `launch` checks again quietly)."""
    if not 1 <= port <= 65535:
        raise UserError(f"--port must be between 1 and 65535 (got {port})")
    if host not in LOOPBACK:
        if auth is None:
            raise UserError(
                f"--host {host} opens the playground to other machines: give --auth USER:PASSWORD too "
                "(or keep the default 127.0.0.1)"
            )
        if warn:
            print(
                f"masklab: warning: serving on {host}: anyone who can reach this machine and knows the password can "
                "use it",
                file=sys.stderr,
            )
    if not port_free(host, port):
        raise UserError(f"port {port} is in use on {host}; pass --port {free_port(host, port)} (free now)")


def theme():
    import gradio as gr

    return gr.themes.Base(
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "Noto Sans", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )


def launch(
    app,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    block: bool = True,
    warned: bool = False,
):
    """Serve `app`; with block=False return at once (tests, benchmarks) and leave closing to the caller.
    `warned`: the caller already printed the open-address warning (`check_address`)."""

    check_address(host, port, auth, warn=not warned)
    app.queue(default_concurrency_limit=2)  # one request per run of a two-run page at a time: CPU cores are few
    return app.launch(
        server_name=host,
        server_port=port,
        share=False,
        auth=auth,
        prevent_thread_lock=not block,
        quiet=True,
        show_error=False,
        theme=theme(),
        css=CSS,
        footer_links=["api"],
        allowed_paths=[],
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        inbrowser=False,
        max_file_size=MAX_UPLOAD_BYTES,
    )
