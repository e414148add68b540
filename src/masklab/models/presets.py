"""Model size presets, shared by every architecture and objective.

Presets follow the BERT miniatures (Turc et al. 2019, arXiv 1908.08962) so results are comparable
with published small models; `model.num_layers` etc. reshape a preset.
"""

from __future__ import annotations

from masklab.config import ModelConfig
from masklab.errors import UserError

# name -> (layers, hidden, heads, intermediate)
PRESETS = {
    "tiny": (2, 128, 2, 512),
    "mini": (4, 256, 4, 1024),
    "small": (4, 512, 8, 2048),
    "medium": (8, 512, 8, 2048),
    "base": (12, 768, 12, 3072),
}


def preset_shape(cfg: ModelConfig, rotary: bool = True) -> tuple[int, int, int, int]:
    """(layers, hidden, heads, intermediate) of the preset, reshaped by the model.* sizes; `rotary`: the
    architecture rotates pairs of each head's dimensions (modernbert, llama), so its head size must be even."""
    if cfg.preset not in PRESETS:
        raise UserError(f"unknown model.preset {cfg.preset!r}; choose one of: {', '.join(PRESETS)}")
    layers, hidden, heads, inter = PRESETS[cfg.preset]
    layers = cfg.num_layers or layers
    hidden = cfg.hidden_size or hidden
    heads = cfg.num_heads or heads
    inter = cfg.intermediate_size or (4 * hidden if cfg.hidden_size else inter)
    if hidden % heads:
        raise UserError(f"model.hidden_size {hidden} is not divisible by model.num_heads {heads}")
    if rotary and (hidden // heads) % 2:  # rotary position embeddings rotate pairs of dimensions
        raise UserError(
            f"model.hidden_size {hidden} / model.num_heads {heads} gives an odd head size ({hidden // heads}); "
            f"rotary position embeddings need an even one: e.g. model.hidden_size={hidden + heads}"
        )
    return layers, hidden, heads, inter
