"""Elastic weight consolidation (Kirkpatrick et al. 2017, "Overcoming catastrophic forgetting in neural
networks", arXiv 1612.00796): after each task, a quadratic penalty keeps the weights that mattered to it
near where that task left them,

    penalty = (lambda / 2) · Σ_tasks Σ_i F_i (theta_i - theta*_i)^2

with F the diagonal Fisher on the task's held-out examples (regularizers/fisher.py). `online` EWC
(Schwarz et al. 2018, "Progress & Compress", arXiv 1805.06370) keeps one running Fisher,
F <- gamma·F + F_new, anchored at the latest weights: memory stays constant however long the sequence.
"""

from __future__ import annotations

import torch

from masklab.registry import register
from masklab.regularizers.base import Regularizer
from masklab.regularizers.fisher import FinishedTask, choose_estimator, fisher_diagonal


class EWC(Regularizer):
    needs_fisher = True

    def __init__(
        self, strength: float, exclude=(), fisher: str = "auto", online: bool = False, gamma: float = 1.0, seed: int = 0
    ):
        self.strength = strength
        self.exclude = set(exclude)  # parameter names outside the shared weights (the tasks' heads)
        self.requested = fisher
        self.online, self.gamma = online, gamma
        self.generator = torch.Generator().manual_seed(seed)  # labels drawn by the sampled estimator
        self.anchors: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []  # (Fisher, theta*) per task
        self.estimators: list[str] = []  # the estimator each task's Fisher came from (recorded in the run)

    def _anchored(self, model) -> dict[str, torch.Tensor]:
        return {n: p for n, p in model.named_parameters() if n not in self.exclude and p.requires_grad}

    def setup(self, model):
        return model

    def penalty(self, model) -> torch.Tensor:
        if not self.anchors:
            return torch.zeros(())
        params = dict(model.named_parameters())
        terms = [
            (f * (params[n].float() - star[n]).pow(2)).sum()
            for fisher, star in self.anchors
            for n, f in fisher.items()
            if params[n].requires_grad
        ]
        if not terms:
            return torch.zeros(())
        return 0.5 * self.strength * torch.stack(terms).sum()

    def end_task(self, model, task: FinishedTask | None = None) -> None:
        """Estimate this task's Fisher on its held-out examples and anchor the weights where it ended."""
        params = self._anchored(model)
        estimator = choose_estimator(self.requested, task.kind, task.num_labels)
        fisher = fisher_diagonal(model, params, task, estimator, self.generator)
        star = {n: p.detach().float().clone() for n, p in params.items()}
        self.estimators.append(estimator)
        if self.online and self.anchors:
            old, _ = self.anchors[0]
            fisher = {n: self.gamma * old.get(n, torch.zeros_like(f)) + f for n, f in fisher.items()}
            self.anchors = [(fisher, star)]
        else:
            self.anchors.append((fisher, star))

    def state_dict(self) -> dict:
        return {"anchors": self.anchors, "estimators": self.estimators, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.anchors, self.estimators = state["anchors"], state["estimators"]
        self.generator.set_state(state["generator"])


@register("regularizer", "ewc")
def build_ewc(
    strength: float, exclude=(), fisher: str = "auto", online: bool = False, gamma: float = 1.0, seed: int = 0
) -> EWC:
    return EWC(strength, exclude, fisher, online, gamma, seed)
