"""The replay memory: a reservoir sample of each finished task's training examples (Vitter 1985,
Algorithm R; Chaudhry et al. 2019, "On Tiny Episodic Memories in Continual Learning", arXiv 1902.10486).

Each task keeps max(replay_min, replay_fraction x its training examples) of them, drawn uniformly by
one pass of reservoir sampling in the order the examples stream past, seeded per task.
"""

from __future__ import annotations

import math
import random

from masklab.errors import UserError


def memory_size(n_examples: int, fraction: float, minimum: int, task: str) -> int:
    size = max(minimum, math.ceil(fraction * n_examples))
    if size > n_examples:
        raise UserError(
            f"the replay memory for {task} would hold {size} examples but the task has {n_examples} "
            f"training examples; lower replay_min (now {minimum}) or replay_fraction"
        )
    return size


def reservoir(items: list, size: int, seed: int) -> list:
    """A uniform sample of `size` items, one pass, O(size) memory."""
    rng = random.Random(seed)
    kept: list = []
    for i, item in enumerate(items):
        if i < size:
            kept.append(item)
        else:
            j = rng.randint(0, i)
            if j < size:
                kept[j] = item
    return kept
