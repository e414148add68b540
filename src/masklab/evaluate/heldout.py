"""Held-out figures of the causal and sequence-to-sequence objectives, on validation blocks.

- causal: next-token loss, perplexity = exp(loss) and next-token accuracy over every position of the
  validation blocks. This perplexity is over whole text, so it compares causal models with each other
  (same tokenizer), never with a masked LM's masked or pseudo-perplexity.
- span corruption: decoder loss, perplexity and accuracy on fixed-seed corruptions (`eval.seed`), so
  every evaluation of every model decodes the same spans.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from masklab.config import EvalConfig
from masklab.data.shards import PackedBlocks
from masklab.runtime import autocast_context, device_of


@torch.no_grad()
def _token_metrics(objective, batches, precision: str, prefix: str) -> dict:
    was_training = objective.training
    objective.eval()
    device = device_of(objective)
    total = correct = n = 0.0
    for batch in batches:
        with autocast_context(precision, device.type):
            out = objective(**{k: v.to(device) for k, v in batch.items()})
        m = len(out["targets"])
        total += float(out["loss"]) * m
        correct += int((out["logits"].argmax(-1) == out["targets"]).sum())
        n += m
    objective.train(was_training)
    loss = total / max(n, 1)
    return {f"{prefix}loss": loss, f"{prefix}perplexity": math.exp(min(loss, 50.0)),
            f"{prefix}accuracy": correct / max(n, 1), f"{prefix}tokens": int(n)}


def _block_ranges(blocks: PackedBlocks, eval_cfg: EvalConfig):
    n = len(blocks) if not eval_cfg.max_blocks else min(eval_cfg.max_blocks, len(blocks))
    for start in range(0, n, eval_cfg.batch_size):
        yield np.arange(start, min(start + eval_cfg.batch_size, n))


def causal_metrics(objective, blocks: PackedBlocks, eval_cfg: EvalConfig, precision: str = "fp32") -> dict:
    """{"causal_loss", "perplexity", "next_token_accuracy", "predicted_tokens"} of a CausalLMObjective."""
    batches = ({"input_ids": torch.as_tensor(blocks.gather(ids), dtype=torch.long)} for ids in _block_ranges(blocks, eval_cfg))
    m = _token_metrics(objective, batches, precision, "causal_")
    return {"causal_loss": m["causal_loss"], "perplexity": m["causal_perplexity"],
            "next_token_accuracy": m["causal_accuracy"], "predicted_tokens": m["causal_tokens"]}


def seq2seq_metrics(objective, corruptor, blocks: PackedBlocks, eval_cfg: EvalConfig, precision: str = "fp32") -> dict:
    """{"span_loss", "span_perplexity", "span_accuracy", "span_tokens"} of a Seq2SeqObjective; `corruptor`
    must be seeded with eval.seed."""
    batches = (corruptor.from_blocks(blocks, ids) for ids in _block_ranges(blocks, eval_cfg))
    return _token_metrics(objective, batches, precision, "span_")
