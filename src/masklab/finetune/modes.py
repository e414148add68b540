"""What fine-tuning may change: layer groups, which of them train in each mode, layer-wise LR decay.

- the model's layer groups, bottom to top: `embeddings`, `layer_0` ... `layer_{L-1}`, `head` (every
  parameter outside the embeddings and encoder layers: pooler and classifier).
- which groups train in each mode (`--mode`): a function of the step, handed to the loop as a hook.
- layer-wise learning-rate decay as a per-param-group `lr_scale` the loop multiplies in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from masklab.errors import UserError
from masklab.train import adamw, decays

# ---- layer groups ---------------------------------------------------------------------------------------

@dataclass
class Anatomy:
    groups: dict[str, list[str]]  # group -> parameter names, bottom to top: embeddings, layer_0.., head
    num_layers: int

    def layer_names(self) -> list[str]:
        return [f"layer_{i}" for i in range(self.num_layers)]

    def top_down(self) -> list[str]:
        """The unfreezing order of gradual fine-tuning: head, top layer, ..., bottom layer, embeddings."""
        return ["head", *reversed(self.layer_names()), "embeddings"]


def anatomy(model) -> Anatomy:
    """Group a transformers encoder-with-head's parameters by layer (BERT, RoBERTa, ELECTRA, DistilBERT ...)."""
    prefix = model.base_model_prefix
    base = model.base_model
    n_layers = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layers", 0)
    layer_path = next((name for name, module in base.named_modules()
                       if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers), None)
    if layer_path is None or not hasattr(base, "embeddings"):
        raise UserError(f"{type(model).__name__} has no embeddings + encoder layer list that masklab can find; "
                        "fine-tune a BERT-style encoder (BERT, RoBERTa, ELECTRA, DistilBERT)")
    groups: dict[str, list[str]] = {"embeddings": [], **{f"layer_{i}": [] for i in range(n_layers)}, "head": []}
    for name, _ in model.named_parameters():
        inner = name[len(prefix) + 1:] if name.startswith(prefix + ".") else None
        if inner is not None and inner.startswith("embeddings."):
            groups["embeddings"].append(name)
        elif inner is not None and inner.startswith(layer_path + "."):
            groups[f"layer_{inner[len(layer_path) + 1:].split('.')[0]}"].append(name)
        else:
            groups["head"].append(name)
    return Anatomy(groups, n_layers)


# ---- modes: which groups train at a given step ------------------------------------------------------------

def _probe(a: Anatomy, top_k: int, step: int, every: int) -> list[str]:
    return ["head"]


def _top_k(a: Anatomy, top_k: int, step: int, every: int) -> list[str]:
    return a.top_down()[:1 + top_k]


def _full(a: Anatomy, top_k: int, step: int, every: int) -> list[str]:
    return a.top_down()


def _gradual(a: Anatomy, top_k: int, step: int, every: int) -> list[str]:
    """ULMFiT's gradual unfreezing (Howard & Ruder 2018, arXiv 1801.06146): the head first, then one more
    group from the top every `every` steps (an epoch by default), the embeddings last."""
    return a.top_down()[:1 + step // every]


MODES: dict[str, Callable[[Anatomy, int, int, int], list[str]]] = {
    "probe": _probe, "top-k": _top_k, "full": _full, "gradual": _gradual,
}


def trainable_at(a: Anatomy, mode: str, top_k: int, step: int, every: int) -> list[str]:
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    return MODES[mode](a, top_k, step, every)


def set_trainable(model, a: Anatomy, groups: list[str]) -> None:
    names = {n for g in groups for n in a.groups[g]}
    for name, p in model.named_parameters():
        p.requires_grad_(name in names)


# ---- optimisation -------------------------------------------------------------------------------------------

def layer_lr_scales(a: Anatomy, decay: float) -> dict[str, float]:
    """Layer-wise learning-rate decay (Sun et al. 2019, arXiv 1905.05583; ULMFiT's discriminative
    fine-tuning): the head and the top encoder layer train at lr, each layer below at `decay` times the
    layer above it (layer_i: decay^(L-1-i)), the embeddings at decay^L. decay = 1 is a single rate."""
    scales = {f"layer_{i}": decay ** (a.num_layers - 1 - i) for i in range(a.num_layers)}
    return {"embeddings": decay ** a.num_layers, **scales, "head": 1.0}


def make_optimizer(model, a: Anatomy, groups: list[str], lr: float, weight_decay: float, decay: float, extra=()):
    """AdamW over `groups` (every group the run will ever train), one param group per layer group and
    decay class, plus `extra` (name, parameter) pairs outside the model (an MLM head beside the
    classifier) at the full rate. Parameters whose gradient is None (frozen for now) are skipped by AdamW."""
    params = dict(model.named_parameters())
    scales = layer_lr_scales(a, decay)
    out = []
    for g in groups:
        matrices = [n for n in a.groups[g] if decays(n, params[n])]
        others = [n for n in a.groups[g] if n not in set(matrices)]
        for names, wd in ((matrices, weight_decay), (others, 0.0)):  # biases and LayerNorm gains don't decay
            chosen = [params[n] for n in names]
            if chosen:
                out.append({"params": chosen, "weight_decay": wd, "lr": lr * scales[g], "lr_scale": scales[g], "layer": g})
    extra = list(extra)
    for chosen, wd in (([p for n, p in extra if decays(n, p)], weight_decay), ([p for n, p in extra if not decays(n, p)], 0.0)):
        if chosen:
            out.append({"params": chosen, "weight_decay": wd, "lr": lr, "lr_scale": 1.0, "layer": "extra"})
    return adamw(out, lr)


def group_grad_norms(model, a: Anatomy) -> dict[str, float]:
    """L2 norm of each layer group's gradient (groups without gradients are left out)."""
    params = dict(model.named_parameters())
    norms = {}
    for g, names in a.groups.items():
        grads = [params[n].grad for n in names if params[n].grad is not None]
        if grads:
            norms[g] = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x.float()) for x in grads])))
    return norms
