"""Sequence and token classification: cross-entropy over a transformers *ForSequence/TokenClassification head.

Batches are padded labelled examples (masklab.data.labelled): {"input_ids", "attention_mask",
["token_type_ids"], "labels"}, labels (B,) for sequence tasks and (B, T) with -100 off the first
sub-token of each word for token tasks. A linear probe of a frozen encoder can train on cached
encoder outputs instead ({"features", "labels"}): the head alone runs, with the same result.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from masklab.registry import register

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _bert_head(model, hidden: torch.Tensor, kind: str) -> torch.Tensor:
    """BertFor{Sequence,Token}Classification's own head on the encoder output `hidden` (B, T, H)."""
    if kind == "token":
        return model.classifier(model.dropout(hidden))  # (B, T, C)
    pooled = model.bert.pooler(hidden) if model.bert.pooler is not None else hidden[:, 0]
    return model.classifier(model.dropout(pooled))  # (B, C)


def _modernbert_head(model, hidden: torch.Tensor, kind: str) -> torch.Tensor:
    """ModernBertFor{Sequence,Token}Classification's own head (prediction head, dropout, classifier) on the final-norm
    encoder output `hidden` (B, T, H); sequence heads read [CLS] (classifier_pooling=cls, see can_cache_features)."""
    if kind == "token":
        return model.classifier(model.drop(model.head(hidden)))  # (B, T, C)
    return model.classifier(model.drop(model.head(hidden[:, 0])))  # (B, C)


# model_type -> head on cached encoder outputs; other architectures probe through the full forward pass (a probe of
# masklab's default encoder, ModernBERT, trains 10-100x faster on cached features: the encoder runs once per example)
FEATURE_HEADS: dict[str, Callable] = {"bert": _bert_head, "modernbert": _modernbert_head}


def model_inputs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k in MODEL_INPUTS}


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over labelled positions: (B, C) with (B,), or (B, T, C) with (B, T) and -100 ignored."""
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


class ClassifyObjective(nn.Module):
    """forward(**batch) -> {"loss", "logits"}; `cached`: batches carry the frozen encoder's features."""

    def __init__(self, model, kind: str = "sequence", cached: bool = False):
        super().__init__()
        self.model = model
        self.kind = kind
        self.head = FEATURE_HEADS[model.config.model_type] if cached else None

    def logits(self, batch: dict) -> torch.Tensor:
        if self.head is not None:
            return self.head(self.model, batch["features"], self.kind)
        return self.model(**model_inputs(batch)).logits

    def forward(self, labels: torch.Tensor, **inputs) -> dict:
        logits = self.logits(inputs)
        return {"loss": classification_loss(logits, labels), "logits": logits}


def can_cache_features(model) -> bool:
    """A head exists for the architecture, and reads what the cache keeps ([CLS], not a mean over tokens)."""
    config = model.config
    return config.model_type in FEATURE_HEADS and getattr(config, "classifier_pooling", "cls") == "cls"


@register("objective", "classify")
def build_classify(model, tokenizer=None, kind: str = "sequence", cached: bool = False) -> ClassifyObjective:
    return ClassifyObjective(model, kind, cached)
