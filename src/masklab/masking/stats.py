"""Measured masking statistics: what a strategy actually did, over a stream of masked batches."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from masklab.config import UPOS_TAGS
from masklab.masking.batcher import MaskedBatch


def masking_statistics(batches: Iterable[MaskedBatch], mask_token_id: int) -> dict:
    """Rate, replacement split, mean unit length and (with POS features) share by POS, measured.

    `batches` come from `MLMBatcher.mask(..., with_units=True)`. Rates are shares of eligible tokens;
    the split is of selected tokens ("random" counts replacements that differ from the original).
    """
    eligible = selected = masked = randomised = units = words = 0
    pos_counts = np.zeros(len(UPOS_TAGS) + 1, dtype=np.int64)
    has_pos = False
    for batch in batches:
        sel = batch.labels != -100
        eligible += int(batch.eligible.sum())
        selected += int(sel.sum())
        masked += int((batch.input_ids[sel] == mask_token_id).sum())
        randomised += int(((batch.input_ids != batch.original) & (batch.input_ids != mask_token_id))[sel].sum())
        if batch.unit_first is not None:
            first = batch.unit_first == torch.arange(sel.shape[1])
            units += int((first & sel).sum())
            if "words" in batch.features:  # words a unit touches: the word starts inside it, plus the one it begins in
                starts = torch.from_numpy(batch.features["words"].astype(bool))
                starts[:, 1] = True  # a block may begin inside a word
                words += int((starts & sel).sum() + (first & sel & ~starts).sum())
        if "pos" in batch.features:
            has_pos = True
            pos_counts += np.bincount(batch.features["pos"][sel.numpy()], minlength=len(pos_counts))[: len(pos_counts)]
    stats = {
        "rate": selected / max(eligible, 1),
        "mask_share": masked / max(selected, 1),
        "random_share": randomised / max(selected, 1),
        "kept_share": (selected - masked - randomised) / max(selected, 1),
        "selected_tokens": selected,
        "eligible_tokens": eligible,
    }
    if units:
        stats["mean_unit_tokens"] = selected / units
        if words:
            stats["mean_unit_words"] = words / units
    if has_pos:
        names = ("none",) + UPOS_TAGS
        stats["share_by_pos"] = {names[i]: float(c / max(selected, 1)) for i, c in enumerate(pos_counts) if c}
    return stats


def sample_block_ids(n_blocks: int, n: int) -> np.ndarray:
    """`n` block ids spread evenly over the corpus (deterministic, so previews and logs are comparable)."""
    return np.unique(np.linspace(0, n_blocks - 1, num=min(n, n_blocks)).astype(np.int64))


def measure_masking(
    batcher,
    blocks,
    max_blocks: int = 256,
    batch_size: int = 64,
    rate: float | None = None,
    extra_features: tuple[str, ...] = (),
) -> dict:
    """`masking_statistics` of `batcher` on up to `max_blocks` blocks (PackedBlocks) spread over the corpus,
    at pass 0 and `rate` (default: masking.rate). `extra_features` (e.g. ("pos",)) are gathered for the
    statistics even if the masker doesn't read them; they must already be attached to `blocks`."""
    batcher.attach(blocks, show_progress=False)
    ids = sample_block_ids(len(blocks), max_blocks)
    names = tuple(dict.fromkeys((*batcher.features, "words", *extra_features)))

    def stream():
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            yield batcher.mask(
                blocks.gather(chunk), chunk, 0, blocks.gather_features(chunk, names), rate, with_units=True
            )

    return masking_statistics(stream(), batcher.mask_token_id)
