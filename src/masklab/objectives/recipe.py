"""The pieces every pretraining objective's behaviour is built from (see masklab/objective_records.py).

An objective's module provides `parts(Setting) -> Parts` (its weighted loss terms for the one loop,
its hooks, and its final figures) and `heldout(model, tokenizer, blocks, cfg, precision, unigram)`
(the same figures for a finished checkpoint). The loop never knows which objective it runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from masklab.config import EvalConfig, RunConfig
from masklab.data.shards import PackedBlocks
from masklab.masking.batches import TrainBatches
from masklab.runtime import autocast_context, device_of
from masklab.train import Hook, Term


@dataclass
class Setting:
    """Everything an objective's parts are built from."""

    model: object
    tokenizer: object
    train_blocks: PackedBlocks
    val_blocks: PackedBlocks
    cfg: RunConfig
    precision: str
    unigram_counts: object
    show_progress: bool


@dataclass
class Parts:
    terms: list[Term]
    hooks: list[Hook]
    final: Callable[[], dict]  # figures for summary.json after training (validation split)
    # networks trained beside the run's model (ELECTRA's generator): stepped by the same optimizer, kept in the trainer
    # state for --resume, and saved at the end as RUN/NAME (save_pretrained, with the tokenizer)
    companions: dict[str, torch.nn.Module] = field(default_factory=dict)


class EvaluateHook(Hook):
    """Periodic validation by a function of no arguments, plus optional start / log-line fields."""

    def __init__(
        self,
        evaluate: Callable[[], dict],
        at_start: Callable[[], dict] | None = None,
        on_log: Callable[[int, int], dict] | None = None,
    ):
        self._evaluate, self._at_start, self._on_log = evaluate, at_start, on_log

    def at_start(self) -> dict:
        return self._at_start() if self._at_start else {}

    def on_log(self, step: int, total_steps: int) -> dict:
        return self._on_log(step, total_steps) if self._on_log else {}

    def evaluate(self, step: int) -> dict:
        return self._evaluate()


def term(
    name: str, objective, weight: float, blocks: PackedBlocks, batcher, batch_size: int, seed: int, s: Setting
) -> Term:
    """A loss term fed by deterministic batches of `blocks` (item m is a pure function of seed and m)."""
    return Term(
        name,
        objective,
        weight,
        lambda n: TrainBatches(blocks, batcher, batch_size, seed, n, s.show_progress),
        batch_size * blocks.seq_length,
    )


def rate_field(cfg: RunConfig, step: int, total: int) -> dict:
    """The log line's masking rate; masked diffusion draws one per block, so it has none."""
    return {} if cfg.masking.diffusion_on else {"mask_rate": cfg.masking.rate_at(step / total)}


@torch.no_grad()
def token_metrics(objective, batches, precision: str, prefix: str) -> dict:
    """Loss, perplexity = exp(loss), accuracy and count over every predicted token of `batches`."""
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
    return {
        f"{prefix}loss": loss,
        f"{prefix}perplexity": math.exp(min(loss, 50.0)),
        f"{prefix}accuracy": correct / max(n, 1),
        f"{prefix}tokens": int(n),
    }


def block_ranges(blocks: PackedBlocks, eval_cfg: EvalConfig):
    """Index arrays of the evaluated validation blocks (eval.max_blocks of them), eval.batch_size at a time."""
    n = len(blocks) if not eval_cfg.max_blocks else min(eval_cfg.max_blocks, len(blocks))
    for start in range(0, n, eval_cfg.batch_size):
        yield np.arange(start, min(start + eval_cfg.batch_size, n))
