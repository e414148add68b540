"""The diagonal Fisher information of a classifier's weights, estimated on held-out examples in eval mode.

F_i = E_x E_{y ~ p(y|x)} [(d log p(y|x) / d theta_i)^2]  (Kirkpatrick et al. 2017, arXiv 1612.00796)

Estimators (`estimator`), each per example, because the Fisher is a mean of squared per-example
gradients, not the square of a mean:
- `exact`: the inner expectation summed over every label, weighted by p(y|x) (one backward per label;
  sequence tasks with small label sets);
- `sampled`: one label drawn from p(y|x) per example (token tasks: one draw per labelled token);
- `empirical`: the gold label instead of the expectation (one backward per example; cheap, biased
  towards the training labels: Kunstner et al. 2019, arXiv 1905.12558);
- `batch`: the squared gradient of a batch's mean log-likelihood times the batch size. Without that
  factor it is about 1/batch-size of the per-example Fisher (the cross terms average out near a minimum),
  which is why a batch-mean-gradient Fisher is never used unscaled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

EXACT_MAX_LABELS = 16  # above this many labels, `auto` takes the sampled estimator (a backward per label gets slow)


@dataclass
class FinishedTask:
    """What a regularizer may use when a task of a sequence ends: held-out examples and the task's log-probabilities."""

    examples: list[dict]  # collated batches of ONE example each (held-out), or larger batches for `batch`
    log_probs: Callable[
        [dict], tuple[torch.Tensor, torch.Tensor]
    ]  # batch -> (log p (N, C) at labelled positions, gold (N,))
    num_labels: int
    kind: str  # sequence | token


def choose_estimator(requested: str, kind: str, num_labels: int) -> str:
    """`auto`: exact for sequence tasks with at most EXACT_MAX_LABELS labels, else sampled."""
    if requested != "auto":
        return "sampled" if requested == "exact" and kind == "token" else requested
    return "exact" if kind == "sequence" and num_labels <= EXACT_MAX_LABELS else "sampled"


def fisher_diagonal(
    model, params: dict[str, torch.Tensor], task: FinishedTask, estimator: str, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Diagonal Fisher (same shapes as `params`), the mean over `task.examples`."""
    names = list(params)
    tensors = [params[n] for n in names]
    fisher = [torch.zeros_like(t, dtype=torch.float32) for t in tensors]
    was_training = model.training
    model.eval()  # no dropout: the Fisher of the model as it predicts
    count = 0

    def accumulate(target: torch.Tensor, weight: float, retain: bool) -> None:
        grads = torch.autograd.grad(target, tensors, retain_graph=retain, allow_unused=True)
        for f, g in zip(fisher, grads):
            if g is not None:
                f.add_(g.float().pow(2), alpha=weight)

    for batch in task.examples:
        logp, gold = task.log_probs(batch)  # (N, C), (N,)
        if estimator == "batch":
            n = int(gold.numel())
            accumulate(logp.gather(1, gold[:, None]).mean(), float(n), False)  # rescaled by the batch size
            count += 1  # the mean over batches of n·(mean gradient)^2
            continue
        if estimator == "exact":
            probs = logp.detach().exp()[0]  # (C,): one labelled position per sequence example
            for y in range(logp.shape[1]):
                accumulate(logp[0, y], float(probs[y]), y < logp.shape[1] - 1)
        else:
            if estimator == "sampled":
                probs = logp.detach().float().exp().cpu()  # the generator lives on the CPU
                labels = torch.multinomial(probs, 1, generator=generator)[:, 0].to(logp.device)
            else:  # empirical
                labels = gold
            accumulate(logp.gather(1, labels[:, None]).sum(), 1.0, False)
        count += 1
    model.train(was_training)
    return {n: f / max(count, 1) for n, f in zip(names, fisher)}
