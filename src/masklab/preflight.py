"""Preflight: facts about a run that otherwise fail silently, checked on a sample before training.

Users of the Hugging Face path lose days to things nothing reports: a tokenizer that drops ZWNJ or maps
a script to [UNK], whole-word masking that masks single tokens because the tokenizer has no word
boundaries, a model that runs its eager attention in fp32, batches that are half padding, packed
documents that attend to each other. Each run prints these as a short block at its start and keeps
them in summary.json under "preflight".
"""

from __future__ import annotations

import re
import sys
import unicodedata

import numpy as np
import torch

from masklab.data.shards import word_starts

WORD_MASKERS = ("whole_word", "span", "pos", "entity", "pmi")  # maskers that choose whole words
_SPACE = re.compile(r"\s+")


def _squeeze(text: str) -> str:
    return _SPACE.sub("", text)


def round_trip(tokenizer, texts: list[str]) -> dict:
    """Encode and decode each text: how many come back whole (up to the tokenizer's own normalisation
    and whitespace), the [UNK] share, and whether format characters (ZWNJ U+200C, ZWJ, bidi marks:
    Unicode category Cf) survive."""
    backend = tokenizer.backend_tokenizer if getattr(tokenizer, "is_fast", False) else None
    normalize = backend.normalizer.normalize_str if backend is not None and backend.normalizer else (lambda s: s)
    intact = tokens = unknown = format_in = format_out = 0
    first_broken = None
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        back = tokenizer.decode(ids)
        tokens += len(ids)
        unknown += sum(i == tokenizer.unk_token_id for i in ids)
        format_in += sum(unicodedata.category(c) == "Cf" for c in text)
        format_out += sum(unicodedata.category(c) == "Cf" for c in back)
        if _squeeze(back) == _squeeze(normalize(text)):
            intact += 1
        elif first_broken is None:
            first_broken = {"text": text[:80], "decoded": back[:80]}
    return {
        "texts": len(texts),
        "intact": intact,
        "tokens": tokens,
        "unk_share": unknown / max(tokens, 1),
        "format_chars": format_in,
        "format_chars_kept": format_out,
        "first_broken": first_broken,
    }


def word_boundaries(tokenizer, texts: list[str], examples: int = 3) -> dict:
    """Words as the whole-word maskers see them (the tokenizer's word ids, as in the shards' sidecar):
    the share of words cut into several tokens (0 means whole-word masking = token masking) and a few
    cut words."""

    words = multi = 0
    shown: list[str] = []
    for text in texts:
        enc = tokenizer(text, add_special_tokens=False)
        if not enc.encodings or enc.encodings[0].word_ids is None:
            return {"available": False}
        starts = word_starts(enc.encodings[0].word_ids)
        pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"])
        bounds = list(np.flatnonzero(starts)) + [len(pieces)]
        for a, b in zip(bounds, bounds[1:]):
            words += 1
            if b - a > 1:
                multi += 1
                if len(shown) < examples:
                    shown.append(" ".join(pieces[a:b]))
    return {"available": True, "words": words, "multi_token_share": multi / max(words, 1), "examples": shown}


def model_facts(model, precision: str) -> dict:
    """The attention implementation and dtypes the model actually runs with."""
    config = getattr(model, "config", None)
    params = list(model.parameters())
    dtypes = sorted({str(p.dtype).replace("torch.", "") for p in params})
    return {
        "attention": getattr(config, "_attn_implementation", None) or "unknown",
        "weights": "/".join(dtypes),
        "device": params[0].device.type if params else "cpu",
        "compute": "bf16 autocast" if precision == "bf16" else precision,
        "torch_threads": torch.get_num_threads(),
    }


def packing_facts(blocks, sep_id: int | None, block_diagonal: bool, sample: int = 512) -> dict:
    """Packed pretraining blocks: no padding by construction; the share of blocks holding a document
    boundary, the tail of the stream that fills no block, and whether documents see each other."""
    n = min(len(blocks), sample)
    ids = blocks.gather(np.linspace(0, len(blocks) - 1, n).astype(np.int64)) if n else np.zeros((0, 0), np.int64)
    inner = ids[:, 1:-1]  # a [SEP] inside the block: another document starts in it
    return {
        "padding_share": 0.0,
        "blocks_with_a_boundary": float((inner == sep_id).any(1).mean()) if n and sep_id is not None else 0.0,
        "dropped_tail_tokens": int(len(blocks.tokens) - len(blocks) * blocks.span),
        "documents_attend_to_each_other": not block_diagonal,
    }


def padding_facts(lengths: list[int], batch_size: int) -> dict:
    """Padded batches (labelled tasks): the share of positions that are padding, batched in order."""
    padded = real = 0
    for i in range(0, len(lengths), batch_size):
        chunk = lengths[i : i + batch_size]
        padded += max(chunk) * len(chunk)
        real += sum(chunk)
    return {"padding_share": 1 - real / max(padded, 1), "packed": False, "documents_attend_to_each_other": False}


def preflight(
    tokenizer, texts: list[str], model, precision: str, strategy: str | None = None, batching: dict | None = None
) -> dict:
    """Every fact for one run (what summary.json keeps under "preflight")."""
    texts = [t for t in texts if t.strip()][:64]
    facts = {"tokenizer": round_trip(tokenizer, texts), "model": model_facts(model, precision)}
    if strategy in WORD_MASKERS:
        facts["words"] = {"strategy": strategy, **word_boundaries(tokenizer, texts)}
    if batching is not None:
        facts["batches"] = batching
    return facts


def warnings(facts: dict) -> list[str]:
    """What in the facts is likely a mistake, in words."""
    out = []
    tok = facts["tokenizer"]
    if tok["texts"] and tok["intact"] < tok["texts"]:
        out.append(
            f"{tok['texts'] - tok['intact']} of {tok['texts']} sample texts do not survive encode/decode "
            f"(first: {tok['first_broken']['text']!r} -> {tok['first_broken']['decoded']!r})"
        )
    if tok["format_chars_kept"] < tok["format_chars"]:
        out.append(
            f"the tokenizer drops format characters (ZWNJ and the like): {tok['format_chars']} in, "
            f"{tok['format_chars_kept']} out"
        )
    words = facts.get("words")
    if words and (not words["available"] or words["multi_token_share"] == 0):
        out.append(
            f"masking.strategy={words['strategy']} chooses whole words, but this tokenizer "
            + ("gives no word boundaries" if not words["available"] else "cut no word of the sample into pieces")
            + ": it masks the same units as strategy=random"
        )
    if facts["model"]["attention"] == "eager" and facts["model"]["device"] == "cuda":  # on CPU eager measured faster
        out.append("the model runs eager attention on a GPU (no SDPA / flash kernel): set model.attention=sdpa")
    batches = facts.get("batches", {})
    if batches.get("padding_share", 0) > 0.5:
        out.append(f"{batches['padding_share']:.0%} of batch positions are padding")
    return out


def format_block(facts: dict) -> str:
    """The few lines a run prints before it trains."""
    tok, model = facts["tokenizer"], facts["model"]
    lines = [
        f"preflight: tokenizer round trip {tok['intact']}/{tok['texts']} sample texts intact, [UNK] "
        f"{tok['unk_share']:.2%} of {tok['tokens']} tokens, format characters kept {tok['format_chars_kept']}/"
        f"{tok['format_chars']}",
        f"preflight: attention {model['attention']} on {model['device']}, weights {model['weights']}, compute "
        f"{model['compute']}, "
        f"{model['torch_threads']} torch thread(s)",
    ]
    if "words" in facts:
        w = facts["words"]
        lines.append(
            f"preflight: whole words ({w['strategy']}): "
            + (
                f"{w['multi_token_share']:.1%} of {w['words']} sample words span several tokens, e.g. "
                + "; ".join(w["examples"])
                if w["available"]
                else "the tokenizer gives no word ids"
            )
        )
    if "batches" in facts:
        b = facts["batches"]
        if "blocks_with_a_boundary" in b:
            lines.append(
                f"preflight: packed blocks, padding {b['padding_share']:.0%}, {b['blocks_with_a_boundary']:.0%} "
                f"of blocks hold a document boundary; documents "
                + (
                    "attend to each other ([SEP] between them)"
                    if b["documents_attend_to_each_other"]
                    else "do not attend to each other (block-diagonal mask)"
                )
            )
        else:
            lines.append(f"preflight: padded batches, padding {b['padding_share']:.0%} of positions, one text per row")
    lines += [f"preflight: warning: {w}" for w in warnings(facts)]
    return "\n".join(lines)


def report(facts: dict, show: bool) -> dict:
    """Print the block (to stderr, beside the progress bars) when `show`; return the facts with their warnings."""
    facts = {**facts, "warnings": warnings(facts)}
    if show:
        print(format_block(facts), file=sys.stderr, flush=True)
    return facts
