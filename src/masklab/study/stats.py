"""Seed statistics for study reports: mean ± sd, 95% intervals, paired comparisons against a baseline.

Intervals use Student's t for fewer than 10 seeds (the usual case: a normal interval would be too
narrow) and the normal approximation from 10 on. Comparisons are paired by seed: the same seed means
the same data order and initialisation, so the per-seed difference cancels most of the seed noise.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy import stats

T_BELOW = 10  # seeds from which the normal 1.96 replaces Student's t


def t_quantile(df: int) -> float:

    return float(stats.t.ppf(0.975, df))


@dataclass
class Spread:
    n: int
    mean: float
    sd: float  # sample standard deviation (n - 1); 0 for one seed
    low: float  # 95% interval of the mean; equal to the mean for one seed
    high: float


def spread(values: list[float]) -> Spread:
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return Spread(n, mean, 0.0, mean, mean)
    sd = statistics.stdev(values)
    half = half_width(n, sd)
    return Spread(n, mean, sd, mean - half, mean + half)


def half_width(n: int, sd: float) -> float:
    """Half the 95% interval of a mean of n values with this sample sd (Student's t below T_BELOW values)."""
    return (t_quantile(n - 1) if n < T_BELOW else 1.959964) * sd / math.sqrt(n)


@dataclass
class Paired:
    n: int
    diff: Spread  # of (point - baseline), in the metric's own units
    wins: int  # seeds on which the point is better in the metric's direction
    ties: int


def paired(point: dict[int, float], baseline: dict[int, float], goal: str) -> Paired | None:
    """point - baseline over the seeds both have; None without a common seed."""
    seeds = sorted(set(point) & set(baseline))
    if not seeds:
        return None
    diffs = [point[s] - baseline[s] for s in seeds]
    sign = 1 if goal == "maximize" else -1
    return Paired(len(seeds), spread(diffs), sum(1 for d in diffs if sign * d > 0), sum(1 for d in diffs if d == 0))


def beyond_noise(p: Paired) -> bool:
    """The 95% interval of the paired difference excludes 0 (needs two or more seeds)."""
    return p.n >= 2 and (p.diff.low > 0 or p.diff.high < 0)
