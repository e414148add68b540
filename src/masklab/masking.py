"""Masking: maskers choose *which* tokens to predict; one shared `corrupt()` decides *how* to hide them.

Splitting selection from corruption means every strategy keeps the configurable 80/10/10 split
(Hugging Face's whole-word collator silently drops the 10% random / 10% kept). A masker implements
`select(input_ids, eligible, generator) -> BoolTensor`; `eligible` already excludes special tokens and
padding, computed once in `MLMBatcher`. New strategies register under a name with `@register("masker", NAME)`.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from masklab.config import MaskingConfig
from masklab.registry import build, register


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (seed, epoch, index, ...): independent streams without shared state."""
    digest = hashlib.blake2b(np.asarray(parts, dtype=np.int64).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def exact_count_select(scores: torch.Tensor, eligible: torch.Tensor, rate: float) -> torch.Tensor:
    """Select the round(rate * n_eligible) lowest-scoring eligible positions of every row.

    Exact per-sequence counts (Cramming, arXiv 2212.14034) give the exact masking rate and nearly
    static shapes for sparse prediction, unlike per-token Bernoulli draws.
    """
    counts = torch.round(eligible.sum(dim=1).to(torch.float64) * rate).long()  # (B,)
    counts = torch.where((counts == 0) & eligible.any(dim=1), torch.ones_like(counts), counts)
    scores = scores.masked_fill(~eligible, float("inf"))
    k = int(counts.max())
    selected = torch.zeros_like(eligible)
    if k == 0:
        return selected
    order = scores.topk(k, dim=1, largest=False).indices  # (B, k) lowest scores first
    keep = torch.arange(k).unsqueeze(0) < counts.unsqueeze(1)  # (B, k)
    return selected.scatter(1, order, keep)


def bernoulli_select(scores: torch.Tensor, eligible: torch.Tensor, rate: float) -> torch.Tensor:
    """Each eligible position independently with probability `rate` (BERT's original sampler)."""
    return (scores < rate) & eligible


SELECTORS = {"exact": exact_count_select, "bernoulli": bernoulli_select}


@register("masker", "random")
class RandomTokenMasker:
    """Uniformly random tokens (Devlin et al. 2019, arXiv 1810.04805)."""

    def __init__(self, cfg: MaskingConfig):
        self.rate = cfg.rate
        self.selector = SELECTORS[cfg.selection]

    def select(self, input_ids: torch.Tensor, eligible: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        scores = torch.rand(input_ids.shape, generator=generator)
        return self.selector(scores, eligible, self.rate)


def build_masker(cfg: MaskingConfig):
    return build("masker", cfg.strategy, cfg)


def corrupt(input_ids: torch.Tensor, selected: torch.Tensor, mask_token_id: int, replacement_ids: torch.Tensor,
            mask_token_fraction: float, random_token_fraction: float, generator: torch.Generator):
    """Hide the selected tokens: [MASK] / random non-special token / unchanged, in the configured split.

    Returns (corrupted input_ids, labels) where labels hold the original id at selected positions and
    -100 elsewhere (the value PyTorch's cross-entropy and Hugging Face models ignore).
    """
    u = torch.rand(input_ids.shape, generator=generator)
    to_mask = selected & (u < mask_token_fraction)
    to_random = selected & (u >= mask_token_fraction) & (u < mask_token_fraction + random_token_fraction)
    picks = torch.randint(len(replacement_ids), input_ids.shape, generator=generator)
    corrupted = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    corrupted = torch.where(to_random, replacement_ids[picks], corrupted)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    return corrupted, labels


class MLMBatcher:
    """Turns (B, T) token blocks into masked MLM batches, deterministically from seeds.

    Every row gets its own generator, seeded from (seed, block id, pass): dynamic masking (RoBERTa)
    uses the epoch as the pass, so a block's masks change every time it is seen; static masking (BERT)
    uses epoch % static_copies, so a block keeps the same `static_copies` patterns. Masks therefore
    depend only on the seed and the block, never on batch composition, worker count, the number of
    processes, or where a run was resumed.
    """

    def __init__(self, cfg: MaskingConfig, tokenizer, seed: int):
        self.cfg = cfg
        self.masker = build_masker(cfg)
        self.seed = seed
        self.mask_token_id = tokenizer.mask_token_id
        special = sorted(set(tokenizer.all_special_ids) | ({tokenizer.pad_token_id} - {None}))
        self.special_ids = torch.tensor(special, dtype=torch.long)
        vocab = torch.arange(len(tokenizer))
        self.replacement_ids = vocab[~torch.isin(vocab, self.special_ids)]

    def eligible(self, input_ids: torch.Tensor) -> torch.Tensor:
        return ~torch.isin(input_ids, self.special_ids)

    def row_generator(self, block_id: int, epoch: int) -> torch.Generator:
        mode_pass = epoch % self.cfg.static_copies if self.cfg.mode == "static" else epoch
        return torch.Generator().manual_seed(derive_seed(self.seed, block_id, mode_pass, self.cfg.mode == "static"))

    def __call__(self, blocks: np.ndarray | torch.Tensor, block_ids, epochs=0) -> dict:
        """Mask (B, T) blocks; `block_ids` (B,) name the blocks, `epochs` (scalar or (B,)) the pass over them."""
        input_ids = torch.as_tensor(blocks, dtype=torch.long)
        eligible = self.eligible(input_ids)
        epochs = np.broadcast_to(np.asarray(epochs), (len(input_ids),))
        corrupted, labels = torch.empty_like(input_ids), torch.empty_like(input_ids)
        for i, (block, epoch) in enumerate(zip(block_ids, epochs)):
            generator = self.row_generator(int(block), int(epoch))
            row = input_ids[i : i + 1]
            selected = self.masker.select(row, eligible[i : i + 1], generator)
            corrupted[i : i + 1], labels[i : i + 1] = corrupt(
                row, selected, self.mask_token_id, self.replacement_ids,
                self.cfg.mask_token_fraction, self.cfg.random_token_fraction, generator)
        return {"input_ids": corrupted, "labels": labels}
