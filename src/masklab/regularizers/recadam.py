"""RecAdam (Chen et al. 2020, "Recall and Learn: Fine-tuning Deep Pretrained Language Models with Less
Forgetting", arXiv 2004.12651): an annealed pull towards the weights the task started from, decoupled
from Adam like AdamW's weight decay.

    lambda(t) = 1 / (1 + exp(-k (t - t0)))          (sigmoid annealing)
    theta <- theta - lambda(t)·AdamStep - lr_t (1 - lambda(t)) gamma (theta - theta*)

Early steps mostly recall theta*, later ones mostly learn the task. The pull per step is lr_t·gamma, so
a coefficient tuned at one learning rate pulls harder at a larger one: gamma is given at the paper's
BERT-base rate of 2e-5 (5000 there) and scaled by 2e-5 / lr, which keeps the pull per step the same
(at 1e-4 the unscaled default would pull 5x harder). t0 is a share of the stage's steps, k is per step.
"""

from __future__ import annotations

import math

import torch

from masklab.registry import register
from masklab.regularizers.l2sp import L2SP

REFERENCE_LR = 2e-5  # the learning rate RecAdam's coefficient was tuned at (BERT-base fine-tuning)


class RecAdam(L2SP):
    """L2-SP's anchor (the weights the task started from, re-anchored after each task), applied as an
    annealed pull on the weights instead of a penalty in the loss."""

    def __init__(self, strength: float, exclude=(), lr: float = REFERENCE_LR, k: float = 0.1, t0: float = 0.25):
        super().__init__(strength, exclude)
        self.gamma = strength * REFERENCE_LR / lr  # the same pull per step at any learning rate
        self.k, self.t0 = k, t0

    def annealing(self, step: int, total_steps: int) -> float:
        return 1.0 / (1.0 + math.exp(-self.k * (step - self.t0 * total_steps)))

    def penalty(self, model) -> torch.Tensor:
        return torch.zeros(())  # nothing in the loss: the pull acts on the weights directly (after_step)

    def step_scale(self, step: int, total_steps: int) -> float:
        return self.annealing(step, total_steps)

    @torch.no_grad()
    def after_step(self, model, lr: float, step: int, total_steps: int) -> None:
        pull = lr * (1.0 - self.annealing(step, total_steps)) * self.gamma
        for n, p in self._anchored(model):
            if p.requires_grad:
                p.sub_(pull * (p - self.start[n].to(p.dtype)))


@register("regularizer", "recadam")
def build_recadam(strength: float, exclude=(), lr: float = REFERENCE_LR, k: float = 0.1, t0: float = 0.25) -> RecAdam:
    return RecAdam(strength, exclude, lr, k, t0)
