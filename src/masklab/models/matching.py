"""Parameter matching: every objective's model at a preset has the reference encoder's parameter count.

A CLM-vs-MLM-vs-Seq2Seq comparison means something only if the models are the same size. The reference
is ModernBERT, the default masked LM, at the preset's shape. Every other family keeps the preset's
depth, width and heads and changes only its feed-forward width, chosen so its non-embedding parameters
(everything but the token and position embedding tables, which scale with the vocabulary and not with
the model) equal the reference's. Parameter counts are affine in that width, so two counts on the meta
device (no memory, no initialisation) give the exact solution.
"""

from __future__ import annotations

import torch
from torch import nn


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """{"total", "non_embedding"}: tied weights counted once; every nn.Embedding table is an embedding."""
    total = sum(p.numel() for p in model.parameters())
    embedding = {id(m.weight): m.weight.numel() for m in model.modules() if isinstance(m, nn.Embedding)}
    return {"total": total, "non_embedding": total - sum(embedding.values())}


class VocabOnly:
    """What the builders read from a tokenizer, for counting without one."""

    def __init__(self, size: int):
        self.size = size
        self.pad_token_id, self.cls_token_id, self.sep_token_id, self.mask_token_id = 0, 2, 3, 4

    def __len__(self) -> int:
        return self.size


def meta_non_embedding(build) -> int:
    """Non-embedding parameters of the model `build()` makes, counted on the meta device (no memory)."""
    with torch.device("meta"):
        return parameter_counts(build())["non_embedding"]


def matched_width(config_for, model_class, target: int) -> int:
    """The feed-forward width (a multiple of 8) at which `model_class(config_for(width))` has `target`
    non-embedding parameters (the reference encoder's)."""
    lo, hi = 64, 1024
    a = meta_non_embedding(lambda: model_class(config_for(lo)))
    b = meta_non_embedding(lambda: model_class(config_for(hi)))
    width = lo + (target - a) * (hi - lo) / (b - a)
    return max(8, int(round(width / 8)) * 8)
