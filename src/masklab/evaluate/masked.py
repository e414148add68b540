"""Honest masked-LM evaluation figures.

- masked accuracy / masked loss on validation blocks with a fixed masking seed (every model, every
  evaluation sees the same masks), and `masked_perplexity = exp(masked loss)`: a perplexity over the
  masked positions only, not comparable with a causal LM's perplexity.
- the unigram baseline: always predict the most frequent training token, scored on the same masks;
  a model that doesn't clearly beat it has learned nothing about context.
- pseudo-perplexity (Salazar et al. 2020, arXiv 1910.14659): mask each token of a sequence in turn,
  PPPL = exp(-mean log p(token | rest)).
- fill-mask: top-k fillers for each [MASK] in a text.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from masklab.config import EvalConfig, MaskingConfig
from masklab.data.batches import eval_batches
from masklab.data.shards import PackedBlocks
from masklab.masking import MLMBatcher
from masklab.objectives.mlm import MaskedLMObjective
from masklab.runtime import autocast_context, device_of


def most_frequent_token(unigram_counts: np.ndarray, special_ids) -> int:
    counts = unigram_counts.copy()
    counts[list(special_ids)] = -1
    return int(counts.argmax())


@torch.no_grad()
def masked_lm_metrics(objective: MaskedLMObjective, blocks: PackedBlocks, tokenizer, eval_cfg: EvalConfig,
                      masking_cfg: MaskingConfig, precision: str = "fp32", unigram_counts: np.ndarray | None = None) -> dict:
    """Masked accuracy, loss and perplexity (+ unigram baseline) on fixed-seed masks."""
    batcher = MLMBatcher(masking_cfg, tokenizer, seed=eval_cfg.seed)
    baseline = most_frequent_token(unigram_counts, batcher.special_ids.tolist()) if unigram_counts is not None else None
    was_training = objective.training
    objective.eval()
    total_loss = 0.0
    correct = baseline_correct = n = 0
    device = device_of(objective)
    for batch in eval_batches(blocks, batcher, eval_cfg.batch_size, eval_cfg.max_blocks):
        with autocast_context(precision, device.type):
            out = objective(batch["input_ids"].to(device), batch["labels"].to(device))
        m = len(out["targets"])
        total_loss += float(out["loss"]) * m
        correct += int((out["logits"].argmax(-1) == out["targets"]).sum())
        if baseline is not None:
            baseline_correct += int((out["targets"] == baseline).sum())
        n += m
    objective.train(was_training)
    loss = total_loss / max(n, 1)
    metrics = {"masked_accuracy": correct / max(n, 1), "masked_loss": loss,
               "masked_perplexity": math.exp(min(loss, 50.0)), "masked_tokens": n}
    if baseline is not None:
        metrics["unigram_accuracy"] = baseline_correct / max(n, 1)
    return metrics


@torch.no_grad()
def pseudo_perplexity(model, tokenizer, blocks: PackedBlocks, n_sequences: int, max_length: int,
                      precision: str = "fp32", batch_size: int = 128) -> float:
    """PPPL over the first `n_sequences` validation blocks, truncated to `max_length` tokens."""
    was_training = model.training
    model.eval()
    device = device_of(model)
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    nll, count = 0.0, 0
    n = min(n_sequences, len(blocks))
    for ids in torch.as_tensor(blocks.gather(np.arange(n)))[:, :max_length]:
        positions = torch.nonzero(~torch.isin(ids, special)).squeeze(1)  # (P,)
        for chunk in positions.split(batch_size):
            copies = ids.repeat(len(chunk), 1)  # (P', L): one copy per masked position
            copies[torch.arange(len(chunk)), chunk] = tokenizer.mask_token_id
            with autocast_context(precision, device.type):
                logits = model(input_ids=copies.to(device)).logits  # (P', L, V)
            logp = torch.log_softmax(logits[torch.arange(len(chunk)), chunk.to(device)].float(), dim=-1).cpu()
            nll -= float(logp[torch.arange(len(chunk)), ids[chunk]].sum())
            count += len(chunk)
    model.train(was_training)
    mean = nll / max(count, 1)
    return math.exp(mean) if mean < 700 else math.inf  # a diverged model: infinite, not an OverflowError


@torch.no_grad()
def fill_mask(model, tokenizer, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """For each mask in `text` (written as [MASK] or the tokenizer's own mask token): top-k (token, prob)."""
    from masklab.errors import UserError

    text = text.replace("[MASK]", tokenizer.mask_token)
    enc = tokenizer(text, return_tensors="pt", truncation=True)
    positions = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero().squeeze(1)
    if len(positions) == 0:
        raise UserError("the text has no mask; write [MASK] where the model should fill in, e.g. \"the [MASK] of the union\"")
    model.eval()
    device = device_of(model)
    inputs = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    probs = torch.softmax(model(**inputs).logits[0, positions.to(device)].float(), dim=-1).cpu()  # (masks, V)
    top = probs.topk(top_k, dim=-1)
    return [[(tokenizer.decode([int(i)]).strip(), float(p)) for p, i in zip(vals, idx)]
            for vals, idx in zip(top.values, top.indices)]
