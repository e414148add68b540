"""Building models through transformers' own classes: a fresh model of a preset's shape for each
objective (BERT / ModernBERT masked LMs, Llama / GPT-2 decoders, a T5 encoder-decoder), or any Hugging
Face checkpoint of the objective's kind to continue from."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import torch
import transformers
from transformers import (
    AutoConfig,
    BertConfig,
    BertForMaskedLM,
    ElectraConfig,
    ElectraForPreTraining,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    ModernBertConfig,
    ModernBertForMaskedLM,
    T5Config,
    T5ForConditionalGeneration,
)

from masklab.config import ModelConfig
from masklab.errors import UserError
from masklab.models.checkpoint import resolve_checkpoint
from masklab.models.matching import VocabOnly, matched_width, meta_non_embedding, parameter_counts
from masklab.models.presets import preset_shape
from masklab.objective_records import record


def attention_implementation(choice: str) -> str:
    """transformers' attention implementation for `model.attention`.

    On CPU the plain (eager) attention trained the mini preset 25% faster than SDPA's CPU
    flash-attention kernel in bf16 (equal in fp32); on CUDA, SDPA dispatches to fused kernels.
    """

    if choice == "auto":
        return "sdpa" if torch.cuda.is_available() else "eager"
    return choice


# dropout fields of transformers configs -> which dropout they are (BERT/RoBERTa names, then ModernBERT's)
DROPOUT_FIELDS = {
    "hidden_dropout_prob": "hidden",
    "attention_probs_dropout_prob": "attention",
    "mlp_dropout": "hidden",
    "embedding_dropout": "hidden",
    "attention_dropout": "attention",
    "classifier_dropout": "hidden",
    "resid_pdrop": "hidden",
    "embd_pdrop": "hidden",
    "attn_pdrop": "attention",
    "dropout_rate": "hidden",
    "summary_first_dropout": "hidden",
}


def apply_dropout(config, hidden: float, attention: float) -> None:
    """Set dropout on a transformers config under whichever names its architecture uses."""
    for name, kind in DROPOUT_FIELDS.items():
        if hasattr(config, name):
            setattr(config, name, hidden if kind == "hidden" else attention)


def architecture_for(cfg: ModelConfig, objective: str) -> str:
    """`model.architecture`, with auto resolved to the objective's default (the first of its list)."""
    allowed = record(objective).architectures
    if cfg.architecture == "auto":
        return allowed[0]
    if cfg.architecture not in allowed:
        raise UserError(
            f"model.architecture={cfg.architecture} cannot train train.objective={objective}; "
            f"choose {' or '.join(allowed)} (or auto)"
        )
    return cfg.architecture


def auto_class(objective: str):

    return getattr(transformers, record(objective).auto_class)


def build_model(cfg: ModelConfig, tokenizer, seq_length: int, objective: str = "mlm"):
    """A fresh model of the objective's architecture for the tokenizer, or the checkpoint in `cfg.init`."""

    if cfg.init:
        path = resolve_checkpoint(cfg.init)
        kind = record(objective).auto_class.removeprefix("AutoModelFor")
        try:
            config = AutoConfig.from_pretrained(str(path))
            apply_dropout(config, cfg.hidden_dropout, cfg.attention_dropout)
            model = auto_class(objective).from_pretrained(
                str(path), config=config, attn_implementation=attention_implementation(cfg.attention)
            )
        except Exception as exc:  # wrong architecture, corrupt weights: transformers raises many types
            raise UserError(
                f"could not load a {kind} model from {path} for train.objective={objective} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
            ) from None
        if model.get_input_embeddings().num_embeddings < len(tokenizer):
            raise UserError(
                f"checkpoint {path} has {model.get_input_embeddings().num_embeddings} embeddings but the "
                f"tokenizer has {len(tokenizer)} tokens; use the checkpoint's own tokenizer (tokenizer.path)"
            )
        if getattr(model.config, "max_position_embeddings", seq_length) < seq_length:
            raise UserError(
                f"checkpoint {path} supports {model.config.max_position_embeddings} positions; lower data.seq_length"
            )
        return model
    return ARCHITECTURES[architecture_for(cfg, objective)](cfg, tokenizer, seq_length)


def _finish(config, cfg: ModelConfig, model_class):
    config._attn_implementation = attention_implementation(cfg.attention)
    return model_class(config)


def build_bert(cfg: ModelConfig, tokenizer, seq_length: int, shape=None):
    """The original BERT encoder (post-LayerNorm, learned positions): what the benchmarks and studies compare."""

    layers, hidden, heads, inter = shape or preset_shape(cfg, rotary=False)  # absolute or relative positions
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=inter,
        max_position_embeddings=max(512, seq_length),
        type_vocab_size=2,
        pad_token_id=tokenizer.pad_token_id,
        hidden_dropout_prob=cfg.hidden_dropout,
        attention_probs_dropout_prob=cfg.attention_dropout,
    )
    return _finish(config, cfg, BertForMaskedLM)


def _special_ids(tokenizer) -> dict:
    return {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.cls_token_id,
        "eos_token_id": tokenizer.sep_token_id,
    }


def build_modernbert(cfg: ModelConfig, tokenizer, seq_length: int, shape=None):
    """ModernBERT (Warner et al. 2024, arXiv 2412.13663): pre-LayerNorm, rotary positions, GeGLU,
    no biases. Pre-LN trains stably at a 3x higher learning rate; from scratch on builtin:sotu it left
    the unigram plateau within 100 s (masked accuracy 0.20 vs BERT's 0.11, tiny shape, 2 cores).

    This is the reference every other objective's model is matched to (`models.matching`)."""

    layers, hidden, heads, inter = shape or preset_shape(cfg)
    if not cfg.intermediate_size:
        inter //= 2  # GeGLU at half the preset's width: 3/4 of BERT's feed-forward parameters at the same preset
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=inter,
        max_position_embeddings=max(512, seq_length),
        attention_dropout=cfg.attention_dropout,
        mlp_dropout=cfg.hidden_dropout,
        embedding_dropout=cfg.hidden_dropout,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        **_special_ids(tokenizer),
    )
    return _finish(config, cfg, ModernBertForMaskedLM)


def build_llama(cfg: ModelConfig, tokenizer, seq_length: int, shape=None):
    """A modern decoder (Llama: pre-RMSNorm, rotary positions, SwiGLU, no biases, tied embeddings): the
    causal counterpart of ModernBERT, with the feed-forward width that matches its parameter count."""

    layers, hidden, heads, inter = shape or preset_shape(cfg)

    def config_for(width):
        return LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=width,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=max(512, seq_length),
            tie_word_embeddings=True,
            attention_dropout=cfg.attention_dropout,
            **_special_ids(tokenizer),
        )

    width = cfg.intermediate_size or matched_width(
        config_for, LlamaForCausalLM, reference_non_embedding(cfg, len(tokenizer), seq_length)
    )
    return _finish(config_for(width), cfg, LlamaForCausalLM)


def build_gpt2(cfg: ModelConfig, tokenizer, seq_length: int, shape=None):
    """GPT-2 (post-2019 classic: pre-LayerNorm, learned positions, GELU MLP, biases), matched the same way."""

    layers, hidden, heads, inter = shape or preset_shape(cfg, rotary=False)  # absolute or relative positions

    def config_for(width):
        return GPT2Config(
            vocab_size=len(tokenizer),
            n_embd=hidden,
            n_layer=layers,
            n_head=heads,
            n_inner=width,
            n_positions=max(512, seq_length),
            resid_pdrop=cfg.hidden_dropout,
            embd_pdrop=cfg.hidden_dropout,
            attn_pdrop=cfg.attention_dropout,
            **_special_ids(tokenizer),
        )

    width = cfg.intermediate_size or matched_width(
        config_for, GPT2LMHeadModel, reference_non_embedding(cfg, len(tokenizer), seq_length)
    )
    return _finish(config_for(width), cfg, GPT2LMHeadModel)


def build_t5(cfg: ModelConfig, tokenizer, seq_length: int, shape=None):
    """T5 v1.1-style encoder-decoder (pre-RMSNorm, relative position buckets, gated GELU, tied embeddings).
    The preset's layers are split between encoder (the larger half) and decoder; the feed-forward width
    is set so the total matches the reference encoder despite the decoder's cross-attention."""

    layers, hidden, heads, inter = shape or preset_shape(cfg, rotary=False)  # absolute or relative positions
    decoder_layers = max(1, layers // 2)
    encoder_layers = max(1, layers - decoder_layers)

    def config_for(width):
        return T5Config(
            vocab_size=len(tokenizer),
            d_model=hidden,
            d_kv=hidden // heads,
            d_ff=width,
            num_layers=encoder_layers,
            num_decoder_layers=decoder_layers,
            num_heads=heads,
            feed_forward_proj="gated-gelu",
            dropout_rate=cfg.hidden_dropout,
            tie_word_embeddings=True,
            relative_attention_max_distance=max(128, seq_length),
            decoder_start_token_id=tokenizer.pad_token_id,
            **_special_ids(tokenizer),
        )

    width = cfg.intermediate_size or matched_width(
        config_for, T5ForConditionalGeneration, reference_non_embedding(cfg, len(tokenizer), seq_length)
    )
    return _finish(config_for(width), cfg, T5ForConditionalGeneration)


def build_electra(cfg: ModelConfig, tokenizer, seq_length: int, shape=None):
    """ELECTRA's discriminator (Clark et al. 2020, arXiv 2003.10555): a BERT-style encoder with a per-token
    original/replaced head, matched to the reference by its feed-forward width. The generator that trains it
    is built beside it by the objective (models/electra.py) and not counted: the discriminator is what is kept."""

    layers, hidden, heads, inter = shape or preset_shape(cfg, rotary=False)  # absolute or relative positions

    def config_for(width):
        return ElectraConfig(
            vocab_size=len(tokenizer),
            embedding_size=hidden,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=width,
            max_position_embeddings=max(512, seq_length),
            pad_token_id=tokenizer.pad_token_id,
            hidden_dropout_prob=cfg.hidden_dropout,
            attention_probs_dropout_prob=cfg.attention_dropout,
        )

    width = cfg.intermediate_size or matched_width(
        config_for, ElectraForPreTraining, reference_non_embedding(cfg, len(tokenizer), seq_length)
    )
    return _finish(config_for(width), cfg, ElectraForPreTraining)


# model.architecture -> builder of a fresh model for a tokenizer (shape from the preset)
ARCHITECTURES = {
    "bert": build_bert,
    "modernbert": build_modernbert,
    "llama": build_llama,
    "gpt2": build_gpt2,
    "t5": build_t5,
    "electra": build_electra,
}


@lru_cache(maxsize=64)
def _reference(cfg_items: tuple, vocab: int, seq_length: int) -> int:
    cfg = ModelConfig(**dict(cfg_items))
    return meta_non_embedding(lambda: build_modernbert(cfg, VocabOnly(vocab), seq_length))


def reference_non_embedding(cfg: ModelConfig, vocab: int, seq_length: int) -> int:
    """Non-embedding parameters of the reference masked LM (ModernBERT) at `cfg`'s preset shape: what every
    other objective's model is matched to (models/matching.py)."""
    shape = {
        k: v for k, v in dataclasses.asdict(cfg).items() if k in ("preset", "num_layers", "hidden_size", "num_heads")
    }
    return _reference(tuple(sorted(shape.items())), vocab, seq_length)


def parameter_table(presets, objectives, vocab: int = 16100, seq_length: int = 128) -> list[dict]:
    """One row per objective x architecture x preset: total and non-embedding parameters, and the
    deviation of the non-embedding count from the reference encoder at the same preset."""
    rows = []
    for preset in presets:
        cfg = ModelConfig(preset=preset)
        reference = reference_non_embedding(cfg, vocab, seq_length)
        for objective in objectives:
            for architecture in record(objective).architectures:
                with torch.device("meta"):
                    counts = parameter_counts(ARCHITECTURES[architecture](cfg, VocabOnly(vocab), seq_length))
                rows.append(
                    {
                        "preset": preset,
                        "objective": objective,
                        "architecture": architecture,
                        **counts,
                        "vs_reference": counts["non_embedding"] / reference - 1.0,
                    }
                )
    return rows


# model_type -> the pretraining learning rate `train.lr: 0` stands for, measured at the default (mini)
# preset (README: Defaults; benchmarks/default_recipe.py). ModernBERT mini at 1e-3 beat post-LN BERT at
# 5e-4 on every corpus measured, and sat on the unigram plateau at 3e-3 (the tiny shape trains at 3e-3).
# The decoders and T5 take the same 1e-3 (pre-norm like ModernBERT), so an objective comparison changes
# one thing; their own best rates are not measured yet.
DEFAULT_LR = {"bert": 5e-4, "modernbert": 1e-3, "llama": 1e-3, "gpt2": 1e-3, "t5": 1e-3}


def pretraining_lr(lr: float, model) -> float:
    """`train.lr`, or the model's architecture default when it is 0 (other model types: BERT's)."""
    return lr or DEFAULT_LR.get(model.config.model_type, DEFAULT_LR["bert"])


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
