"""A minimal pair, and the fixed subsample the rule-built suites draw from their full products."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class MinimalPair:
    good: str
    bad: str
    phenomenon: str  # the group its accuracy is reported under


def subsample(items: list, k: int, seed: int = 0) -> list:
    """A fixed `k` of `items` in their original order (all of them when there are fewer)."""
    if len(items) <= k:
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), k))
    return [items[i] for i in keep]
