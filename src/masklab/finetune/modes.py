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


LAYER_LISTS = ("layer", "layers", "h", "block")  # what transformers calls a model's list of transformer layers


def _layer_lists(base) -> list[str]:
    """Names of the base model's layer lists, outermost only, in module order (T5: encoder, then decoder)."""
    found: list[str] = []
    for name, module in base.named_modules():
        if (
            isinstance(module, torch.nn.ModuleList)
            and len(module)
            and name.split(".")[-1] in LAYER_LISTS
            and not any(name.startswith(outer + ".") for outer in found)
        ):
            found.append(name)
    return found


def anatomy(model) -> Anatomy:
    """Group a transformers model-with-head's parameters by layer: encoders (BERT, RoBERTa, ModernBERT ...),
    decoders (Llama, GPT-2) and encoder-decoders (T5: encoder layers first, then decoder layers)."""
    prefix = model.base_model_prefix
    base = model.base_model
    lists = _layer_lists(base)
    if not lists:
        raise UserError(
            f"{type(model).__name__} has no list of transformer layers that masklab can find; fine-tune a "
            "BERT-style encoder, a Llama / GPT-2 decoder or a T5 encoder-decoder"
        )
    offsets, n_layers = {}, 0
    for name in lists:
        offsets[name] = n_layers
        n_layers += len(base.get_submodule(name))
    embedding_params = {
        f"{prefix}.{m}.{p}"
        for m, module in base.named_modules()
        if isinstance(module, torch.nn.Embedding)
        for p, _ in module.named_parameters()
    }
    groups: dict[str, list[str]] = {"embeddings": [], **{f"layer_{i}": [] for i in range(n_layers)}, "head": []}
    for name, _ in model.named_parameters():
        inner = name[len(prefix) + 1 :] if name.startswith(prefix + ".") else None
        owner = next((lst for lst in lists if inner is not None and inner.startswith(lst + ".")), None)
        if owner is not None:
            groups[f"layer_{offsets[owner] + int(inner[len(owner) + 1 :].split('.')[0])}"].append(name)
        elif inner is not None and (inner.startswith("embeddings.") or name in embedding_params):
            groups["embeddings"].append(name)
        else:
            groups["head"].append(name)
    return Anatomy(groups, n_layers)


# ---- modes: which groups train at a given step ------------------------------------------------------------


def _probe(a: Anatomy, top_k: int, step: int, every: int) -> list[str]:
    return ["head"]


def _top_k(a: Anatomy, top_k: int, step: int, every: int) -> list[str]:
    return a.top_down()[: 1 + top_k]


def _full(a: Anatomy, top_k: int, step: int, every: int) -> list[str]:
    return a.top_down()


def _gradual(a: Anatomy, top_k: int, step: int, every: int) -> list[str]:
    """ULMFiT's gradual unfreezing (Howard & Ruder 2018, arXiv 1801.06146): the head first, then one more
    group from the top every `every` steps (an epoch by default), the embeddings last."""
    return a.top_down()[: 1 + step // every]


MODES: dict[str, Callable[[Anatomy, int, int, int], list[str]]] = {
    "probe": _probe,
    "top-k": _top_k,
    "full": _full,
    "gradual": _gradual,
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
    return {"embeddings": decay**a.num_layers, **scales, "head": 1.0}


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
                out.append(
                    {"params": chosen, "weight_decay": wd, "lr": lr * scales[g], "lr_scale": scales[g], "layer": g}
                )
    extra = list(extra)
    for chosen, wd in (
        ([p for n, p in extra if decays(n, p)], weight_decay),
        ([p for n, p in extra if not decays(n, p)], 0.0),
    ):
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
            norms[g] = float(
                torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x.float()) for x in grads]))
            )
    return norms
