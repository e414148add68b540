"""The HTML of every view. Text blocks carry dir="auto", so Persian or Arabic reads right to left; runs
shown side by side are columns. Everything is escaped here: model output is never trusted as markup."""

from __future__ import annotations

import html

from masklab.masking.preview import PIECE_STYLE, legend_html, pieces_html

CSS = (
    # each paragraph takes the direction of its first letter
    "textarea,input[type=text],[dir=auto]{unicode-bidi:plaintext}"
    ".ml-cols{display:flex;gap:1.5em;flex-wrap:wrap}.ml-col{flex:1;min-width:16em}"
    ".ml-col h4{margin:.2em 0 .5em}.ml-mask{margin-bottom:1em}"
    ".ml-row{display:flex;align-items:center;gap:.6em;margin:2px 0}.ml-word{min-width:7em;font-family:monospace}"
    ".ml-track{flex:1;background:#eee;border-radius:3px;height:1.1em}.ml-bar"
    "{background:#4c78a8;height:100%;border-radius:3px}"
    ".ml-score{min-width:4.5em;text-align:right;font-variant-numeric:tabular-nums}"
    ".ml-error{color:#9b1c1c;background:#fdecec;border:1px solid #f5b5b5;padding:.5em .8em;border-radius:4px}"
    ".ml-notice{color:#7a5200;background:#fff6e0;border:1px solid #f0d58a;padding:.4em .8em;border-radius:4px}"
    ".ml-table{border-collapse:collapse}.ml-table td,.ml-table th{border:1px solid #ccc;padding:3px 8px}"
    ".ml-best{font-weight:bold;background:#e8f4e8}.ml-step .mask{padding:0 3px}"
    "iframe.ml-report{width:100%;height:42em;border:1px solid #ccc}.ml-curves svg{max-width:100%;height:auto}"
    ".ml-summary table{border-collapse:collapse;font-size:.85em}.ml-summary td,.ml-summary th"
    "{border:1px solid #ddd;padding:1px 6px}" + PIECE_STYLE
)


def error(message: str) -> str:
    return f"<div class='ml-error' role='alert'>{html.escape(message)}</div>"


def notice(message: str) -> str:
    return f"<div class='ml-notice'>{html.escape(message)}</div>" if message else ""


def columns(parts: list[tuple[str, str]]) -> str:
    """Each run's answer in its own column, headed by the run's name (no heading for a single run)."""
    if len(parts) == 1:
        return parts[0][1]
    return (
        "<div class='ml-cols'>"
        + "".join(f"<div class='ml-col'><h4 dir='auto'>{html.escape(name)}</h4>{body}</div>" for name, body in parts)
        + "</div>"
    )


def fill_bars(proposals: list[list[dict]], note: str = "") -> str:
    blocks = []
    for i, row in enumerate(proposals, 1):
        lines = "".join(
            f"<div class='ml-row'><span class='ml-word' dir='auto'>{html.escape(p['token_str'])}</span>"
            f"<span class='ml-track'><span class='ml-bar' style='display:block;width:{100 * p['score']:.1f}"
            "%'></span></span>"
            f"<span class='ml-score'>{p['score']:.3f}</span></div>"
            for p in row
        )
        title = f"[MASK] {i}" if len(proposals) > 1 else "[MASK]"
        best = html.escape(row[0]["sequence"]) if row else ""
        blocks.append(f"<div class='ml-mask'><b>{title}</b> <span dir='auto'>→ {best}</span>{lines}</div>")
    return notice(note) + "".join(blocks)


def masked_text(preview) -> str:
    rows = []
    for key, value in preview.stats.items():
        if key == "share_by_pos":
            continue
        target = preview.targets.get(key)
        shown = f"{value:.3f}" if isinstance(value, float) else f"{value:,}"
        rows.append(
            f"<tr><td>{html.escape(key)}</td><td>{shown}</td><td>{'' if target is None else f'{target:.3f}'}</td></tr>"
        )
    for tag, share in sorted(preview.stats.get("share_by_pos", {}).items(), key=lambda kv: -kv[1]):
        rows.append(f"<tr><td>share {html.escape(tag)}</td><td>{share:.3f}</td><td></td></tr>")
    table = (
        f"<table class='ml-table'><tr><th>measured over {preview.stats.get('passes', 1)} maskings</th><th>measured</th>"
        f"<th>configured</th></tr>{''.join(rows)}</table>"
    )
    return (
        notice(preview.notice)
        + f"<p>{legend_html()}</p><div class='ml-preview'>{pieces_html(preview.pieces)}</div>{table}"
    )


def step_texts(texts: list[str], step: int, steps: int, mask_token: str = "[MASK]") -> str:
    """The samples after `step` of `steps`, every remaining mask in the [MASK] colour."""
    out = []
    for text in texts:
        body = html.escape(text).replace(
            html.escape(mask_token), f"<span class='mask' dir='ltr'>{html.escape(mask_token)}</span>"
        )
        out.append(f"<p class='ml-step' dir='auto'>{body}</p>")
    return f"<p><b>step {step} / {steps}</b></p>" + "".join(out)


def score_table(rows: list[dict]) -> str:
    head = "<tr><th>sentence</th><th>log-prob</th><th>tokens</th><th>per token</th><th>rank</th></tr>"
    body = "".join(
        f"<tr class='{'ml-best' if r['rank'] == 1 else ''}'><td dir='auto'>{html.escape(r['sentence'])}</td>"
        f"<td>{r['score']:.2f}</td><td>{r['tokens']}</td><td>{r['per_token']:.3f}</td><td>{r['rank']}</td></tr>"
        for r in rows
    )
    kind = rows[0]["kind"] if rows else ""
    return f"<p>score: <code>{html.escape(kind)}</code></p><table class='ml-table ml-scores'>{head}{body}</table>"
