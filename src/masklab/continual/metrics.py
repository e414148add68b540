"""Forgetting measured on an accuracy matrix R[stage][task]: row 0 is the start (a linear probe per task),
row k the model after training on task k; tasks not trained yet are scored with a linear probe too.

- average accuracy: mean of the last row (Chaudhry et al. 2018, arXiv 1801.10112);
- forgetting of task j: accuracy right after learning it minus at the end, R[j][j] - R[T][j] (the
  definition Avalanche reports; the last task's is 0);
- BWT = mean over j < T of R[T][j] - R[j][j]: negative is forgetting (Lopez-Paz & Ranzato 2017,
  "Gradient Episodic Memory", arXiv 1706.08840);
- FWT = mean over j > 1 of R[j-1][j] - R[0][j]: how much the earlier tasks helped a probe on task j
  before it was trained (the same paper, with the start's probe as the baseline b_j);
- learning: R[j][j], and its gap to fine-tuning task j alone from the start.
Tasks are 1-based in these formulas; lists are 0-based in the code (stage k learns task k-1).
"""

from __future__ import annotations

import statistics


def average_accuracy(matrix: list[list[float]]) -> float:
    return statistics.fmean(matrix[-1])


def forgetting(matrix: list[list[float]]) -> list[float]:
    final = matrix[-1]
    return [matrix[j + 1][j] - final[j] for j in range(len(final))]


def backward_transfer(matrix: list[list[float]]) -> float:
    n = len(matrix[-1])
    if n < 2:
        return 0.0
    return statistics.fmean(matrix[-1][j] - matrix[j + 1][j] for j in range(n - 1))


def forward_transfer(matrix: list[list[float]]) -> float:
    n = len(matrix[-1])
    if n < 2:
        return 0.0
    return statistics.fmean(matrix[j][j] - matrix[0][j] for j in range(1, n))


def learned(matrix: list[list[float]]) -> list[float]:
    """R[j][j]: accuracy on each task right after training on it."""
    return [matrix[j + 1][j] for j in range(len(matrix[-1]))]


def sequence_metrics(matrix: list[list[float]]) -> dict:
    return {
        "average_accuracy": average_accuracy(matrix),
        "forgetting": forgetting(matrix),
        "mean_forgetting": statistics.fmean(forgetting(matrix)[:-1]) if len(matrix[-1]) > 1 else 0.0,
        "bwt": backward_transfer(matrix),
        "fwt": forward_transfer(matrix),
        "learning_accuracy": learned(matrix),
        "mean_learning_accuracy": statistics.fmean(learned(matrix)),
    }


def _mean_std(values: list) -> tuple:
    """Element-wise mean and sample std of numbers, lists or lists of lists (0 std for one value)."""
    first = values[0]
    if isinstance(first, list):
        pairs = [_mean_std([v[i] for v in values]) for i in range(len(first))]
        return [m for m, _ in pairs], [s for _, s in pairs]
    if first is None:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate_seeds(summaries: list[dict], numeric: tuple[str, ...]) -> dict:
    """One summary over seeds: each `numeric` key's mean (same key) and sample std (`KEY_std`); the
    rest from the first seed."""
    out = {k: v for k, v in summaries[0].items() if k not in numeric and k != "seed"}
    out["seeds"] = [s["seed"] for s in summaries]
    for key in numeric:
        if all(key in s for s in summaries):
            out[key], out[f"{key}_std"] = _mean_std([s[key] for s in summaries])
    return out
