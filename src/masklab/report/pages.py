"""What every report page shares: markdown and HTML tables, the page style, inline SVG.

Pages are self-contained: images are inline SVG (or base64 PNG), styles are inline, nothing is fetched.
"""

from __future__ import annotations

import html
import io
import re

import matplotlib

STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
    "img,svg{max-width:100%;height:auto}dt{font-weight:bold}"
)


def markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    return "\n".join(
        ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *["| " + " | ".join(r) + " |" for r in rows]]
    )


def html_table(columns: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def svg_text(fig, salt: str | None = None) -> str:
    """A matplotlib figure as an <svg> element for inlining: no prolog, DOCTYPE, metadata or namespace URIs, so the
    page holds no address at all (the browser test checks that nothing is fetched).

    `salt` names the figure: its element ids become a hash of the salt and their content instead of random ones,
    so the same figure writes the same bytes (a study re-run on a fresh machine diffs clean against the shipped
    report), while figures named apart keep distinct ids on one page."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        fig.savefig(buffer, format="svg")
    text = re.sub(r"^.*?(?=<svg)", "", buffer.getvalue(), flags=re.S)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF / Dublin Core vocabulary links
    return re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)  # HTML5 parses inline SVG without namespace URIs
