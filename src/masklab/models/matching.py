"""Parameter matching: every objective's model at a preset has the reference encoder's parameter count.

A CLM-vs-MLM-vs-Seq2Seq comparison means something only if the models are the same size. The reference
is ModernBERT, the default masked LM, at the preset's shape. Every other family keeps the preset's
depth, width and heads and changes only its feed-forward width, chosen so its non-embedding parameters
(everything but the token and position embedding tables, which scale with the vocabulary and not with
the model) equal the reference's. Parameter counts are affine in that width, so two counts on the meta
device (no memory, no initialisation) give the exact solution.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import torch
from torch import nn

from masklab.config import ModelConfig


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """{"total", "non_embedding"}: tied weights counted once; every nn.Embedding table is an embedding."""
    total = sum(p.numel() for p in model.parameters())
    embedding = {id(m.weight): m.weight.numel() for m in model.modules() if isinstance(m, nn.Embedding)}
    return {"total": total, "non_embedding": total - sum(embedding.values())}


def _meta_counts(model_class, config) -> dict[str, int]:
    with torch.device("meta"):
        return parameter_counts(model_class(config))


class _VocabOnly:
    """What the builders read from a tokenizer, for counting without one."""

    def __init__(self, size: int):
        self.size = size
        self.pad_token_id, self.cls_token_id, self.sep_token_id, self.mask_token_id = 0, 2, 3, 4

    def __len__(self) -> int:
        return self.size


@lru_cache(maxsize=64)
def _reference(cfg_items: tuple, vocab: int, seq_length: int) -> int:
    from transformers import ModernBertForMaskedLM

    from masklab.models.build import build_modernbert

    cfg = ModelConfig(**dict(cfg_items))
    with torch.device("meta"):
        model = build_modernbert(cfg, _VocabOnly(vocab), seq_length)
    assert isinstance(model, ModernBertForMaskedLM)
    return parameter_counts(model)["non_embedding"]


def reference_non_embedding(cfg: ModelConfig, vocab: int, seq_length: int) -> int:
    """Non-embedding parameters of the reference masked LM (ModernBERT) at `cfg`'s preset shape."""
    shape = {k: v for k, v in dataclasses.asdict(cfg).items() if k in ("preset", "num_layers", "hidden_size", "num_heads")}
    return _reference(tuple(sorted(shape.items())), vocab, seq_length)


def matched_width(config_for, model_class, cfg: ModelConfig, tokenizer, seq_length: int) -> int:
    """The feed-forward width (a multiple of 8) at which `model_class(config_for(width))` has the
    reference's non-embedding parameter count."""
    target = reference_non_embedding(cfg, len(tokenizer), seq_length)
    lo, hi = 64, 1024
    a = _meta_counts(model_class, config_for(lo))["non_embedding"]
    b = _meta_counts(model_class, config_for(hi))["non_embedding"]
    width = lo + (target - a) * (hi - lo) / (b - a)
    return max(8, int(round(width / 8)) * 8)


def parameter_table(presets, objectives, vocab: int = 16100, seq_length: int = 128) -> list[dict]:
    """One row per objective x architecture x preset: total and non-embedding parameters, and the
    deviation of the non-embedding count from the reference encoder at the same preset."""
    from masklab.models.build import ARCHITECTURES, OBJECTIVE_MODELS

    rows = []
    tokenizer = _VocabOnly(vocab)
    for preset in presets:
        cfg = ModelConfig(preset=preset)
        reference = reference_non_embedding(cfg, vocab, seq_length)
        for objective in objectives:
            for architecture in OBJECTIVE_MODELS[objective][1]:
                with torch.device("meta"):
                    counts = parameter_counts(ARCHITECTURES[architecture](cfg, tokenizer, seq_length))
                rows.append({"preset": preset, "objective": objective, "architecture": architecture, **counts,
                             "vs_reference": counts["non_embedding"] / reference - 1.0})
    return rows
