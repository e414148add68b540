"""Deterministic batch streams over packed blocks, for training and for evaluation.

Training batch number m covers positions [m*B, (m+1)*B) of an endless stream of per-epoch
permutations of the blocks, each permutation seeded by (seed, epoch). A batch is therefore a pure
function of (seed, m): resuming at step s just starts at m = s * accumulation, dataloader workers
need no shared random state, and n processes with batch b see exactly the blocks and masks of one
process with batch n*b. The masker's per-token features (word starts, POS ids, phrase units) are cut
from sidecars beside the shards, in the same blocks. With a masking-rate schedule, micro-batch m is
masked at `masking.rate_at(m / len(self))`: the rate follows training progress and stays a pure
function of m, so resumed runs and dataloader workers agree on it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from masklab.config import EvalConfig
from masklab.data.shards import PackedBlocks
from masklab.masking.batcher import MLMBatcher
from masklab.masking.core import derive_seed

MAX_EVAL_PASSES = 64  # a handful of validation blocks cannot buy precision by repeating their masks forever


class TrainBatches(Dataset):
    """Item m is micro-batch m: {"input_ids", "labels"} of shape (B, T)."""

    def __init__(
        self,
        blocks: PackedBlocks,
        batcher: MLMBatcher,
        batch_size: int,
        seed: int,
        length: int,
        show_progress: bool = True,
    ):
        self.blocks = blocks
        self.batcher = batcher
        batcher.attach(blocks, show_progress)
        self.batch_size = batch_size
        self.seed = seed
        self.length = length
        self._perm: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.length

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._perm is None or self._perm[0] != epoch:
            rng = np.random.default_rng(derive_seed(self.seed, epoch, 0x5EED))
            self._perm = (epoch, rng.permutation(len(self.blocks)))
        return self._perm[1]

    def __getitem__(self, m: int) -> dict:
        n = len(self.blocks)
        positions = m * self.batch_size + np.arange(self.batch_size)
        epochs = positions // n
        ids = np.array([self._permutation(int(e))[p % n] for e, p in zip(epochs, positions)])
        return self.batcher.from_blocks(self.blocks, ids, epochs, rate=self.batcher.rate_at(m / self.length))


def eval_batches(blocks: PackedBlocks, batcher: MLMBatcher, eval_cfg: EvalConfig):
    """Validation blocks in order, masked with the batcher's (fixed) seed at the final `masking.rate`:
    the same masks for every model (a masked-diffusion model too: it is scored at the fixed rate).

    With `eval.min_masked_tokens`, the blocks are passed over again, pass p masked as "epoch" p of the same
    fixed seed, until at least that many tokens were masked: a small validation split still gives a masked
    accuracy whose sampling noise is below the differences a study asks about."""
    batcher.attach(blocks, show_progress=False)
    n = len(blocks) if not eval_cfg.max_blocks else min(eval_cfg.max_blocks, len(blocks))
    masked = 0
    for p in range(MAX_EVAL_PASSES):
        for start in range(0, n, eval_cfg.batch_size):
            batch = batcher.from_blocks(
                blocks, np.arange(start, min(start + eval_cfg.batch_size, n)), p, batcher.cfg.rate
            )
            masked += int((batch["labels"] != -100).sum())
            yield batch
        if masked == 0 or masked >= eval_cfg.min_masked_tokens:
            return


def collate_single(item):
    """DataLoader collate for datasets whose items are already whole batches."""
    return item


def init_worker(worker_id: int) -> None:
    """One thread per dataloader worker: the model's matmuls need the cores more than masking does.

    No per-worker seeding is needed: every batch seeds its own generators from (seed, index).
    """
    torch.set_num_threads(1)
