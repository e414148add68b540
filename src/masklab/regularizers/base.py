"""The interface every regularizer implements, with the no-op behaviour a hook it does not need has.

The loop calls every method of every regularizer (no `hasattr` probing): a plain penalty overrides
`penalty` and the anchoring methods; RecAdam also scales the step and pulls after it.
"""

from __future__ import annotations

import torch


class Regularizer:
    needs_fisher: bool = False  # end_task wants a FinishedTask with held-out examples (EWC's Fisher)

    def setup(self, model):
        """Before the optimizer is built: take anchors; may return a wrapped model."""
        return model

    def penalty(self, model) -> torch.Tensor:
        """Added to every micro-batch's loss."""
        return torch.zeros(())

    def step_scale(self, step: int, total_steps: int) -> float:
        """A factor on the learning rate of the annealed parameter groups at this step."""
        return 1.0

    def after_step(self, model, lr: float, step: int, total_steps: int) -> None:
        """Acts on the weights after the optimizer's step (decoupled pulls)."""

    def end_task(self, model, task=None) -> None:
        """After a task of a sequence (`task`: a fisher.FinishedTask when needs_fisher)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict returned (a resumed sequence keeps its anchors)."""
