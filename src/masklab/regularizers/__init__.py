"""Regularizers: penalties the one loop adds to the loss, `loss = Σ w·objective + Σ r.penalty(model)`.

A regularizer has `setup(model) -> model` (called once, before the optimizer is built),
`penalty(model) -> Tensor` (every micro-batch) and `end_task(model)` (after a task of a sequence).

    l2sp.py  L2-SP: pull the weights towards the start (Li et al. 2018)
"""

from masklab.regularizers import l2sp  # noqa: F401  (registers the regularizers)
from masklab.registry import build


def build_regularizer(name: str, strength: float, **options):
    return build("regularizer", name, strength, **options)


__all__ = ["build_regularizer"]
