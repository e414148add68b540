"""The MLM collator: (B, T) token blocks + per-token features -> {"input_ids", "labels"}."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from masklab.config import MaskingConfig
from masklab.masking.core import RATE, BlockRandom, corrupt, derive_seed, unit_first_position, unit_starts
from masklab.masking.diffusion import rates_and_weights
from masklab.registry import build


def build_masker(cfg: MaskingConfig):
    return build("masker", cfg.strategy, cfg)


@dataclass
class MaskedBatch:
    """Everything one masking call decided, for statistics and previews (training only needs the dict)."""

    original: torch.Tensor  # (B, T) token ids before corruption
    input_ids: torch.Tensor  # (B, T) corrupted
    labels: torch.Tensor  # (B, T) original id where selected, else -100
    eligible: torch.Tensor  # (B, T) bool: not special, not padding
    unit_first: torch.Tensor | None  # (B, T) position of the first token of each token's masking unit, when asked for
    features: dict  # the per-token features the masker read, (B, T) numpy arrays
    loss_weight: torch.Tensor | None = None  # (B, T) masked diffusion: each predicted token's share of the batch loss
    rates: np.ndarray | None = None  # (B,) masked diffusion: the rate each block drew


class MLMBatcher:
    """Turns (B, T) token blocks into masked MLM batches, deterministically from seeds.

    Every row draws from its own counter-based random stream, keyed by (seed, block id, pass): dynamic
    masking (RoBERTa) uses the epoch as the pass, so a block's masks change every time it is seen; static
    masking (BERT) uses epoch % static_copies, so a block keeps the same `static_copies` patterns. Masks
    therefore depend only on the seed, the block and the rate, never on batch composition, worker count,
    the number of processes, or where a run was resumed. The rate defaults to `masking.rate`; with a rate
    schedule, `TrainBatches` passes `rate=masking.rate_at(progress)` for each micro-batch. With masked
    diffusion (`masking.diffusion`), `rate=None` means each block draws its own rate from its own stream,
    and batches carry a "loss_weight" (B, T) that makes the mean loss the diffusion ELBO; evaluation passes
    the fixed `masking.rate`, so its figures compare with any MLM's.
    """

    def __init__(self, cfg: MaskingConfig, tokenizer, seed: int):
        self.cfg = cfg
        self.masker = build_masker(cfg)
        self.seed = seed
        self.tokenizer = tokenizer
        self.mask_token_id = tokenizer.mask_token_id
        special = sorted(set(tokenizer.all_special_ids) | ({tokenizer.pad_token_id} - {None}))
        self.special_ids = torch.tensor(special, dtype=torch.long)
        vocab = torch.arange(len(tokenizer))
        self.replacement_ids = vocab[~torch.isin(vocab, self.special_ids)]
        self._special_lookup = np.zeros(max(len(tokenizer), int(self.special_ids.max()) + 1), dtype=bool)
        self._special_lookup[special] = True

    @property
    def features(self) -> tuple[str, ...]:
        return self.masker.features

    def rate_at(self, progress: float) -> float | None:
        """The rate of training micro-batches at `progress`; None = drawn per block (masked diffusion)."""
        return None if self.cfg.diffusion_on else self.cfg.rate_at(progress)

    def attach(self, blocks, show_progress: bool = True) -> None:
        """Give `blocks` (PackedBlocks) the sidecars the masker reads, building them once if needed."""
        for sidecar in self.masker.sidecars():
            blocks.attach(sidecar, self.tokenizer, show_progress)

    def eligible(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) True where a token may be selected: anything but special tokens (a table lookup, not isin)."""
        return torch.from_numpy(~self._special_lookup[input_ids.numpy()])

    def random(self, block_ids, epochs, length: int) -> BlockRandom:
        static = self.cfg.mode == "static"
        passes = np.broadcast_to(np.asarray(epochs), (len(block_ids),))
        keys = [
            derive_seed(self.seed, int(b), int(e) % self.cfg.static_copies if static else int(e), static)
            for b, e in zip(block_ids, passes)
        ]
        return BlockRandom(keys, length)

    def mask(
        self,
        blocks,
        block_ids,
        epochs=0,
        features: dict | None = None,
        rate: float | None = None,
        with_units: bool = False,
    ) -> MaskedBatch:
        """Mask (B, T) blocks; `block_ids` (B,) name the blocks, `epochs` (scalar or (B,)) the pass over them,
        `features` the per-token arrays the masker reads (see `PackedBlocks.gather_features`)."""
        input_ids = torch.as_tensor(np.asarray(blocks), dtype=torch.long)
        block_ids = np.asarray(list(block_ids) if not isinstance(block_ids, np.ndarray) else block_ids)
        features = features or {}
        missing = [name for name in self.masker.features if name not in features]
        if missing:
            raise ValueError(
                f"masking strategy {self.cfg.strategy!r} needs the features {missing}; "
                "pass them (PackedBlocks.gather_features) or use MLMBatcher.from_blocks"
            )
        eligible = self.eligible(input_ids).numpy()
        rng = self.random(block_ids, epochs, input_ids.shape[1])
        factors = None
        if rate is None and self.cfg.diffusion_on:
            rate, factors = rates_and_weights(
                rng.uniform(RATE)[:, 0], self.cfg.diffusion.schedule, self.cfg.diffusion.epsilon
            )
        elif rate is None:
            rate = self.cfg.rate
        selected = self.masker.select(input_ids, eligible, features, rate, rng)
        unit_first = None
        if with_units or self.cfg.corrupt_per == "unit":  # counter-based draws: the same units select() used
            starts, _ = self.masker.units(input_ids, eligible, features, rng)
            unit_first = torch.from_numpy(unit_first_position(unit_starts(starts, eligible)))
        corrupted, labels = corrupt(
            input_ids,
            selected,
            self.mask_token_id,
            self.replacement_ids,
            self.cfg.mask_token_fraction,
            self.cfg.random_token_fraction,
            rng,
            unit_first if self.cfg.corrupt_per == "unit" else None,
        )
        batch = MaskedBatch(input_ids, corrupted, labels, torch.from_numpy(eligible), unit_first, features)
        if factors is not None:
            batch.rates = np.asarray(rate)
            counts = selected.sum(dim=1).clamp(min=1).double()  # (B,) realised masked tokens per block
            per_token = torch.from_numpy(factors) / counts / len(counts)  # m'(t_b) / n_b / B
            batch.loss_weight = torch.where(selected, per_token[:, None], 0.0).float()
        return batch

    def __call__(self, blocks, block_ids, epochs=0, features: dict | None = None, rate: float | None = None) -> dict:
        batch = self.mask(blocks, block_ids, epochs, features, rate)
        out = {"input_ids": batch.input_ids, "labels": batch.labels}
        if batch.loss_weight is not None:
            out["loss_weight"] = batch.loss_weight
        return out

    def from_blocks(self, blocks, block_ids, epochs=0, rate: float | None = None) -> dict:
        """Gather blocks `block_ids` of a PackedBlocks (tokens and the masker's features) and mask them."""
        return self(blocks.gather(block_ids), block_ids, epochs, blocks.gather_features(block_ids, self.features), rate)
