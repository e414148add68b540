"""Regularizers: penalties the one loop adds to the loss, `loss = Σ w·objective + Σ r.penalty(model)`.

A regularizer subclasses base.Regularizer: `setup(model) -> model` (called before the optimizer is
built), `penalty(model) -> Tensor` (every micro-batch), `end_task(model, finished)` (after a task of a
sequence; `finished` is a fisher.FinishedTask), `state_dict()` / `load_state_dict()` (a resumed
sequence keeps its anchors), and `step_scale` / `after_step` (scale the optimizer's step and act after
it: see train.py). The base class gives each the behaviour of not needing it.

    base.py     Regularizer: the interface, with no-op defaults
    l2sp.py     L2-SP: pull the weights towards the start (Li et al. 2018)
    ewc.py      elastic weight consolidation, offline and online (Kirkpatrick et al. 2017; Schwarz et al. 2018)
    recadam.py  RecAdam: annealed pull decoupled from Adam (Chen et al. 2020)
    fisher.py   the diagonal Fisher estimators EWC uses
"""

from masklab.registry import build
from masklab.regularizers import ewc, l2sp, recadam  # noqa: F401  (registers the regularizers)


def build_regularizer(name: str, strength: float, **options):
    return build("regularizer", name, strength, **options)


__all__ = ["build_regularizer"]
