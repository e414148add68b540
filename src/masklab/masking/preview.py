"""`masklab mask-preview`: corpus blocks as the configured masker hides them, plus measured statistics.

Every predicted token is shown in one of three ways: replaced by [MASK], replaced by a random token,
or kept unchanged (but still predicted). The terminal view uses rich styles; the same view is written
as a small self-contained HTML file.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from rich.text import Text

from masklab.config import RunConfig
from masklab.data.pipeline import prepare_data
from masklab.data.shards import packed_blocks, sidecar_path
from masklab.data.tagging import pos_sidecar
from masklab.masking import MLMBatcher
from masklab.masking.stats import measure_masking, sample_block_ids
from masklab.masking.strategies import mean_span_words

KINDS = {  # kind -> (terminal style, HTML colour, legend)
    "mask": ("bold white on red", "#d62728", "[MASK]"),
    "random": ("bold black on yellow", "#f2c500", "random replacement (original in brackets)"),
    "kept": ("bold black on green", "#2ca02c", "kept, but predicted"),
}


@dataclass
class Piece:
    text: str  # what the model sees
    kind: str  # "", "mask", "random" or "kept"
    original: str  # what was there
    space_before: bool  # a word boundary precedes it
    special: bool = False  # [CLS], [SEP], [UNK], padding: never predicted, and never sets the text's direction


@dataclass
class Preview:
    samples: list[list[Piece]]
    stats: dict
    targets: dict


def _token_text(tokenizer, token_id: int, continuation: bool) -> str:
    text = tokenizer.decode([token_id]).strip()
    return text[2:] if continuation and text.startswith("##") else text


def render_pieces(tokenizer, batch, row: int) -> list[Piece]:
    """The pieces of one masked block, special tokens included."""
    original = batch.original[row].tolist()
    shown = batch.input_ids[row].tolist()
    selected = (batch.labels[row] != -100).tolist()
    starts = batch.features["words"][row].astype(bool)
    eligible = batch.eligible[row].tolist()
    pieces = []
    for t, (orig, seen, sel) in enumerate(zip(original, shown, selected)):
        continuation = t > 1 and not starts[t]
        before = _token_text(tokenizer, orig, continuation)
        if not sel:
            kind, text = "", before
        elif seen == tokenizer.mask_token_id:
            kind, text = "mask", tokenizer.mask_token
        elif seen != orig:
            kind, text = "random", _token_text(tokenizer, seen, False)
        else:
            kind, text = "kept", before
        pieces.append(Piece(text, kind, before, t > 0 and not continuation, not eligible[t]))
    return pieces


def mask_preview(cfg: RunConfig, n: int = 5, stats_blocks: int = 256, show_progress: bool = True) -> Preview:
    """Mask `n` sample blocks of the training split and measure the masker on `stats_blocks` blocks."""

    data = prepare_data(cfg.data, cfg.tokenizer, show_progress=show_progress)
    tokenizer = data.tokenizer
    blocks = packed_blocks(data.shards, "train", cfg.data.seq_length, tokenizer.cls_token_id)
    batcher = MLMBatcher(cfg.masking, tokenizer, seed=cfg.train.seed)
    batcher.attach(blocks, show_progress)
    extra = ()
    if "pos" not in batcher.features:  # share by POS for any strategy, when the corpus' tags are already cached
        sidecar = pos_sidecar(cfg.masking.pos.tagger)
        if sidecar_path(data.shards, "train", sidecar).exists():
            blocks.attach(sidecar, tokenizer, show_progress=False)
            extra = ("pos",)
    ids = sample_block_ids(len(blocks), n)
    names = tuple(dict.fromkeys((*batcher.features, "words")))
    batch = batcher.mask(blocks.gather(ids), ids, 0, blocks.gather_features(ids, names))
    samples = [render_pieces(tokenizer, batch, row) for row in range(len(ids))]
    stats = measure_masking(batcher, blocks, stats_blocks, extra_features=extra)
    m = cfg.masking
    targets = {
        "rate": m.rate,
        "mask_share": m.mask_token_fraction,
        "random_share": m.random_token_fraction,
        "kept_share": 1.0 - m.mask_token_fraction - m.random_token_fraction,
    }
    if m.strategy == "span":
        targets["mean_unit_words"] = mean_span_words(m.span.p, m.span.max_words)
    return Preview(samples, stats, targets)


def print_preview(preview: Preview, strategy: str, console) -> None:

    legend = Text("legend: ")
    for style, _, label in KINDS.values():
        legend.append(f" {label} ", style=style)
        legend.append("  ")
    console.print(legend)
    for i, pieces in enumerate(preview.samples, 1):
        text = Text(f"{i}. ")
        for piece in pieces:
            if piece.space_before:
                text.append(" ")
            if piece.kind:
                text.append(piece.text, style=KINDS[piece.kind][0])
                if piece.kind == "random":
                    text.append(f"[{piece.original}]", style="dim")
            else:
                text.append(piece.text)
        console.print(text)
        console.print()
    table = Table(title=f"masking statistics: {strategy} ({preview.stats['eligible_tokens']:,} eligible tokens)")
    table.add_column("statistic")
    table.add_column("measured", justify="right")
    table.add_column("configured", justify="right")
    for key, value in preview.stats.items():
        if key == "share_by_pos":
            continue
        target = preview.targets.get(key)
        table.add_row(
            key, f"{value:.4f}" if isinstance(value, float) else f"{value:,}", "" if target is None else f"{target:.4f}"
        )
    for tag, share in sorted(preview.stats.get("share_by_pos", {}).items(), key=lambda kv: -kv[1]):
        table.add_row(f"share {tag}", f"{share:.4f}", "")
    console.print(table)


PIECE_STYLE = "".join(
    f".{kind}{{background:{colour};color:#fff;border-radius:3px;padding:0 2px}}"
    for kind, (_, colour, _) in KINDS.items()
)  # the classes pieces_html uses


def legend_html() -> str:
    return " ".join(f'<span class="{kind}">{html.escape(label)}</span>' for kind, (_, _, label) in KINDS.items())


def pieces_html(pieces: list[Piece]) -> str:
    """One masked block as a paragraph whose direction comes from its own words (Persian reads right to
    left): [CLS], [MASK] and the like carry dir="ltr", which dir="auto" skips. The original of every
    predicted token is its tooltip."""
    out = []
    for piece in pieces:
        text = html.escape(piece.text)
        if piece.kind:
            text = f'<span class="{piece.kind}" dir="ltr" title="original: {html.escape(piece.original)}">{text}</span>'
            if piece.kind == "random":
                text += f'<small class="original" dir="ltr">[{html.escape(piece.original)}]</small>'
        elif piece.special:
            text = f'<span class="special" dir="ltr">{text}</span>'
        out.append((" " if piece.space_before else "") + text)
    return f'<p dir="auto">{"".join(out)}</p>'


def write_html(preview: Preview, strategy: str, path: Path) -> None:
    """A self-contained HTML page: legend, the masked samples, the statistics table."""
    style, legend = PIECE_STYLE, legend_html()
    samples = [pieces_html(pieces) for pieces in preview.samples]
    rows = []
    for key, value in preview.stats.items():
        if key == "share_by_pos":
            rows += [
                f"<tr><td>share {html.escape(t)}</td><td>{s:.4f}</td><td></td></tr>"
                for t, s in sorted(value.items(), key=lambda kv: -kv[1])
            ]
            continue
        target = preview.targets.get(key)
        shown = f"{value:.4f}" if isinstance(value, float) else f"{value:,}"
        rows.append(f"<tr><td>{key}</td><td>{shown}</td><td>{'' if target is None else f'{target:.4f}'}</td></tr>")
    page = (
        f"<!doctype html><meta charset=utf-8><title>masklab mask-preview: {html.escape(strategy)}</title>"
        f"<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.7}}{style}"
        f"td{{padding:2px 12px}}</style><h1>mask-preview: {html.escape(strategy)}</h1><p>{legend}</p>{''.join(samples)}"
        f"<table><tr><th>statistic</th><th>measured</th><th>configured</th></tr>{''.join(rows)}</table>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
