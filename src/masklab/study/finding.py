"""The finding in plain words, generated from the numbers, and the published finding beside it.

Which setting won and by how much; whether the gap exceeds seed noise (the paired 95% interval excludes
zero); and whether this run agrees with the published claim, which a study states as "point A is at
least as good as (or better than) point B" on its metric.
"""

from __future__ import annotations

from masklab.study.results import PointResult, compare
from masklab.study.spec import LABEL, StudySpec
from masklab.study.stats import Paired, beyond_noise, paired


def label(point: dict, keys: list[str], names: bool = True) -> str:
    """The point by the keys that vary (key=value, or values alone under a table header naming the keys)."""
    if LABEL in point:
        return str(point[LABEL])
    shown = {k: point[k] for k in keys if k in point} or point
    return ", ".join(f"{k}={_value(v)}" if names else _value(v) for k, v in shown.items()) or "base"


def _value(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def gap_words(p: Paired) -> str:
    """The paired difference's interval, how many seeds the first point won, and whether that is noise."""
    if p.n < 2:
        return "one common seed, so seed noise is not estimated"
    return f"95% CI {fmt(p.diff.low)} to {fmt(p.diff.high)}; the first wins {p.wins}/{p.n} seeds; " + (
        "beyond seed noise" if beyond_noise(p) else "within seed noise"
    )


def ranked(spec: StudySpec, groups: list[PointResult]) -> list[PointResult]:
    sign = -1 if spec.goal == "maximize" else 1
    return sorted(groups, key=lambda g: sign * g.spread().mean)


def finding(spec: StudySpec, groups: list[PointResult], keys: list[str]) -> list[str]:
    """Two or three sentences on which setting won and whether the gap is larger than seed noise."""
    if not groups:
        return ["No trial has finished yet."]
    order = ranked(spec, groups)
    best = order[0]
    s = best.spread()
    better = "higher" if spec.goal == "maximize" else "lower"
    lines = [
        f"{label(best.point, keys)} gave the best {spec.metric} ({better} is better): {fmt(s.mean)} ± {fmt(s.sd)} "
        f"over {s.n} seed{'s' if s.n != 1 else ''}."
    ]
    if len(order) > 1:
        second = order[1]
        p = paired(best.values, second.values, spec.goal)
        if p is not None:
            lines.append(
                f"The runner-up, {label(second.point, keys)}, has {fmt(second.spread().mean)}; paired on "
                f"{p.n} common seed{'s' if p.n != 1 else ''} the difference is {fmt(p.diff.mean)} ({gap_words(p)})."
            )
    if spec.baseline:
        base = [g for g in groups if all(g.point.get(k) == v for k, v in spec.baseline.items())]
        if base and base[0] is not best:
            p = paired(best.values, base[0].values, spec.goal)
            if p is not None:
                lines.append(
                    f"Against the baseline ({label(base[0].point, keys)}): {fmt(p.diff.mean)} ({gap_words(p)})."
                )
    return lines


def verdict(spec: StudySpec, groups: list[PointResult]) -> str | None:
    """Does this run agree with the published claim? None when the study states none."""
    if spec.published is None or spec.published.claim is None:
        return None
    claim = spec.published.claim
    p = compare(groups, claim.prefer, claim.over, spec.goal)
    a, b = label(claim.prefer, list(claim.prefer)), label(claim.over, list(claim.over))
    if p is None:
        return f"Not yet testable: the points {a} and {b} both need finished trials with a common seed."
    sign = 1 if spec.goal == "maximize" else -1
    d = sign * p.diff.mean  # > 0: prefer is better
    lo, hi = sorted((sign * p.diff.low, sign * p.diff.high))
    where = f"{a} vs {b}: {fmt(p.diff.mean)} on {spec.metric} ({gap_words(p)})"
    if p.n < 2:
        word = "agrees (one seed: no test of noise)" if d >= 0 else "disagrees (one seed: no test of noise)"
    elif claim.relation == "better":
        word = "agrees" if lo > 0 else "disagrees" if hi < 0 else "is inconclusive (the gap is within seed noise)"
    else:  # at least as good: only a difference beyond noise in the other direction contradicts it
        word = (
            "disagrees"
            if hi < 0
            else "agrees"
            if lo > 0 or d >= 0
            else "is consistent with it (the shortfall is within seed noise)"
        )
    return f"This run {word}: {where}."
