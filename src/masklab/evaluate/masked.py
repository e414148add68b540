"""Honest masked-LM evaluation figures.

- masked accuracy / masked loss on validation blocks with a fixed masking seed (every model, every
  evaluation sees the same masks), and `masked_perplexity = exp(masked loss)`: a perplexity over the
  masked positions only, not comparable with a causal LM's perplexity.
- the unigram baseline: always predict the most frequent training token, scored on the same masks;
  a model that doesn't clearly beat it has learned nothing about context.
- pseudo-perplexity (Salazar et al. 2020, arXiv 1910.14659): mask each token of a sequence in turn,
  PPPL = exp(-mean log p(token | rest)).
- fill-mask: top-k fillers for each [MASK] in a text, in the model hub's fill-mask schema.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


@dataclass
class Filled:
    """Fill-mask proposals in the model hub's schema: {"score", "token", "token_str", "sequence"} each, exactly
    as a transformers fill-mask pipeline returns them (one mask: the sequence without special tokens;
    several: one list per mask, each sequence filling only its own mask)."""

    proposals: list[list[dict]]  # per mask, in order: the top-k proposals
    notice: str  # e.g. "the text was cut to 512 tokens"

    def hub(self) -> list:
        """The pipeline's shape: a flat list for one mask, a list of lists for several."""
        return self.proposals[0] if len(self.proposals) == 1 else self.proposals


def encode_with_masks(tokenizer, text: str, max_tokens: int) -> tuple[list[int], str]:
    """Token ids ([CLS] ... [SEP]) of `text`, cut to `max_tokens` with a notice; a clear error without a mask."""
    from masklab.errors import UserError

    mask = tokenizer.mask_token
    if mask is None:
        raise UserError("this tokenizer has no mask token: fill-mask needs a masked LM's tokenizer")
    ids = tokenizer(text.replace("[MASK]", mask), add_special_tokens=True, verbose=False)["input_ids"]
    if tokenizer.mask_token_id not in ids:
        raise UserError("the text has no [MASK]: write [MASK] where a word should be predicted, e.g. \"the [MASK] of the union\"")
    notice = ""
    if len(ids) > max_tokens:
        notice = f"the text is {len(ids):,} tokens long; the model reads the first {max_tokens:,}, the rest was cut"
        ids = ids[: max_tokens - 1] + [tokenizer.sep_token_id if tokenizer.sep_token_id is not None else ids[-1]]
        if tokenizer.mask_token_id not in ids:
            raise UserError(f"every [MASK] is beyond the first {max_tokens:,} tokens the model reads; move one earlier "
                            "or shorten the text")
    return ids, notice


@torch.no_grad()
def fill_mask(model, tokenizer, text: str, top_k: int = 5, max_tokens: int | None = None) -> Filled:
    """The top-k fillers of every [MASK] (or the tokenizer's own mask token) in `text`. Only the masked
    positions go through the vocabulary projection, so a long text costs little more than a short one."""
    from masklab.errors import UserError
    from masklab.generate.predictors import MaskedPredictor

    if not 1 <= top_k <= len(tokenizer):
        raise UserError(f"top-k must be between 1 and the vocabulary size {len(tokenizer)} (got {top_k})")
    limit = min(getattr(model.config, "max_position_embeddings", 512), max_tokens or 10**9)
    ids, notice = encode_with_masks(tokenizer, text, limit)
    tensor = torch.tensor([ids], device=device_of(model))
    positions = (tensor[0] == tokenizer.mask_token_id).nonzero(as_tuple=True)[0]
    logp = MaskedPredictor(model)(tensor, torch.ones_like(tensor), torch.zeros_like(positions), positions)
    scores, tokens = logp.exp().topk(top_k, dim=-1)
    single = len(positions) == 1
    proposals = []
    for position, row_scores, row_tokens in zip(positions.tolist(), scores.tolist(), tokens.tolist()):
        row = []
        for score, token in zip(row_scores, row_tokens):
            filled = list(ids)
            filled[position] = token
            filled = [t for t in filled if t != tokenizer.pad_token_id]
            row.append({"score": score, "token": token, "token_str": tokenizer.decode([token]),
                        "sequence": tokenizer.decode(filled, skip_special_tokens=single)})
        proposals.append(row)
    return Filled(proposals, notice)
