"""L2-SP (Li, Grandvalet & Davoine 2018, "Explicit Inductive Bias for Transfer Learning with
Convolutional Networks", arXiv 1802.01483): penalty (α/2)·||θ − θ_start||² on the weights the start
provided, so fine-tuning stays near them; the new task head is left free."""

from __future__ import annotations

import torch

from masklab.registry import register
from masklab.regularizers.base import Regularizer


class L2SP(Regularizer):
    def __init__(self, strength: float, exclude=()):
        self.strength = strength
        self.exclude = set(exclude)  # parameter names with no meaningful start (a new head)
        self.start: dict[str, torch.Tensor] = {}

    def _anchored(self, model):
        return ((n, p) for n, p in model.named_parameters() if n not in self.exclude)

    def setup(self, model):
        self.start = {n: p.detach().clone() for n, p in self._anchored(model)}
        return model

    def penalty(self, model) -> torch.Tensor:
        terms = [(p.float() - self.start[n]).pow(2).sum() for n, p in self._anchored(model) if p.requires_grad]
        if not terms:
            return torch.zeros(())
        return 0.5 * self.strength * torch.stack(terms).sum()

    def end_task(self, model, task=None) -> None:
        """In a task sequence, the next task is pulled towards where this one ended."""
        self.setup(model)

    def state_dict(self) -> dict:
        return {"start": self.start}

    def load_state_dict(self, state: dict) -> None:
        self.start = state["start"]


@register("regularizer", "l2sp")
def build_l2sp(strength: float, exclude=()) -> L2SP:
    return L2SP(strength, exclude)
