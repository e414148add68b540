"""Fine-tuning's hooks into the one loop: what trains at each step, and validation with best-model selection."""

from __future__ import annotations

import copy

from masklab.finetune.metrics import evaluate_classifier
from masklab.finetune.modes import Anatomy, group_grad_norms, set_trainable, trainable_at
from masklab.train import Hook


class ModeHook(Hook):
    """The mode's trainable layer groups at each step (they change only in gradual mode), per-group
    gradient norms at log steps, and for a probe no dropout inside the frozen encoder."""

    def __init__(self, model, a: Anatomy, mode: str, top_k: int, unfreeze_every: int):
        self.model, self.a, self.mode, self.top_k, self.every = model, a, mode, top_k, unfreeze_every
        self.groups: list[str] = []

    def before_step(self, step: int, total_steps: int) -> dict:
        if self.mode == "probe":
            self.model.base_model.eval()  # a probe reads fixed features
        now = trainable_at(self.a, self.mode, self.top_k, step, self.every)
        if now == self.groups:
            return {}
        self.groups = now
        set_trainable(self.model, self.a, now)
        return {"trainable": now}

    def on_log(self, step: int, total_steps: int) -> dict:
        return {"grad_norm": group_grad_norms(self.model, self.a)}

    def state_dict(self) -> dict:
        return {"groups": list(self.groups)}

    def load_state_dict(self, state: dict) -> None:
        self.groups = list(state["groups"])
        set_trainable(self.model, self.a, self.groups)


class ValidationHook(Hook):
    """Validation accuracy / macro-F1 / loss at each evaluation; keeps the weights with the best
    validation macro-F1 (ties keep the earlier step), which the run is tested with at the end."""

    def __init__(self, objective, val_batches: list[dict], num_labels: int, precision: str):
        self.objective, self.val_batches, self.num_labels, self.precision = (
            objective,
            val_batches,
            num_labels,
            precision,
        )
        self.best_step, self.best_score, self.best_state = 0, float("-inf"), None

    def evaluate(self, step: int) -> dict:
        metrics = evaluate_classifier(self.objective, self.val_batches, self.num_labels, self.precision)
        if metrics["macro_f1"] > self.best_score:
            self.best_step, self.best_score = step, metrics["macro_f1"]
            self.best_state = copy.deepcopy(self.objective.model.state_dict())
        return metrics

    def state_dict(self) -> dict:
        return {"best_step": self.best_step, "best_score": self.best_score, "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best_step, self.best_score, self.best_state = state["best_step"], state["best_score"], state["best_state"]
