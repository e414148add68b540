"""The finding in plain words, generated from the numbers, and the published finding beside it.

Which setting won and by how much; whether the gap exceeds seed noise (the paired 95% interval excludes
zero), and if not, how many seeds would settle it; and whether this run agrees with the published claim,
which a study states as "point A is at least as good as (or better than) point B" on its metric.

A study asks about one factor (its `factor` keys: init, mode, rate, ...). Every other key that varies
(task, corpus, budget) blocks: rankings and comparisons are made within each block, paired by seed, and
never between points that differ in a blocking key.
"""

from __future__ import annotations

from masklab.study.results import PointResult, compare, matching, seed_means
from masklab.study.spec import LABEL, StudySpec, canonical, seeds_text
from masklab.study.stats import Paired, beyond_noise, half_width, paired

MAX_SEEDS = 1000  # beyond this a gap is as good as zero at this noise: "more seeds" would not settle it


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


def seeds_to(p: Paired, bound: float) -> int | None:
    """The fewest seeds whose 95% half-width, at the observed paired sd, is below `bound` (None: no sd yet, no
    room, or more than MAX_SEEDS)."""
    if p.n < 2 or p.diff.sd == 0 or bound <= 0:
        return None
    return next((n for n in range(2, MAX_SEEDS + 1) if half_width(n, p.diff.sd) < bound), None)


def seeds_needed(p: Paired) -> int | None:
    """The fewest seeds whose 95% interval, at the observed paired sd, would exclude zero for a gap of the
    observed size (None: no sd estimated yet, no gap, or more than MAX_SEEDS)."""
    return seeds_to(p, abs(p.diff.mean)) if p.diff.mean != 0 else None


def equivalent(p: Paired, margin: float) -> bool:
    """The whole paired interval lies inside +-margin: any difference is smaller than the one that matters."""
    return margin > 0 and p.n >= 2 and -margin < p.diff.low and p.diff.high < margin


def gap_words(p: Paired, margin: float = 0.0) -> str:
    """The paired difference's interval, how many seeds the first point won, and whether that is noise; if it
    is, an equivalence verdict against the margin or what would settle it."""
    if p.n < 2:
        return "one common seed, so seed noise is not estimated: a second seed would"
    words = f"95% CI {fmt(p.diff.low)} to {fmt(p.diff.high)}; the first wins {p.wins}/{p.n} seeds; "
    if beyond_noise(p):
        return words + "beyond seed noise"
    if equivalent(p, margin):
        return words + f"within seed noise and equivalent: the interval lies inside the margin ±{fmt(margin)}"
    n = seeds_needed(p)
    settle = (
        f"about {n} seeds would settle a gap this size (paired sd {fmt(p.diff.sd)})"
        if n
        else f"a gap this small is within noise at any practical seed count (paired sd {fmt(p.diff.sd)})"
    )
    bounding = seeds_to(p, margin - abs(p.diff.mean)) if margin > 0 else None
    if bounding:
        settle += f", and about {bounding} would show equivalence within ±{fmt(margin)}"
    return words + "within seed noise; " + settle


def blocking_keys(spec: StudySpec, keys: list[str]) -> list[str]:
    """The varying keys that are not the question's factor: each combination of their values is one block."""
    factor = spec.factor_keys
    return [k for k in keys if k not in factor and k != LABEL] if factor else []


def blocks(spec: StudySpec, groups: list[PointResult], keys: list[str]) -> list[tuple[dict, list[PointResult]]]:
    """(block values, its points) in the points' order; one block holding every point when nothing blocks."""
    out: dict[str, tuple[dict, list[PointResult]]] = {}
    for g in groups:
        block = {k: g.point.get(k) for k in blocking_keys(spec, keys)}
        out.setdefault(canonical(block), (block, []))[1].append(g)
    return list(out.values())


def block_baseline(spec: StudySpec, points: list[PointResult]) -> PointResult | None:
    """The baseline of one block: its point with the baseline's factor values."""
    if not spec.baseline:
        return None
    factor = [k for k in spec.baseline if k in spec.factor_keys] or list(spec.baseline)
    hits = matching(points, {k: spec.baseline[k] for k in factor})
    return hits[0] if hits else None


def ranked(spec: StudySpec, groups: list[PointResult]) -> list[PointResult]:
    sign = -1 if spec.goal == "maximize" else 1
    return sorted(groups, key=lambda g: sign * g.spread().mean)


def finding(spec: StudySpec, groups: list[PointResult], keys: list[str]) -> list[str]:
    """Sentences on which setting won and whether the gap is larger than seed noise: one set per block, each
    ranking only the points of its block."""
    if not groups:
        return ["No trial has finished yet."]
    lines = []
    shown = [k for k in keys if k not in blocking_keys(spec, keys)] or keys
    for block, points in blocks(spec, groups, keys):
        where = f"In {label(block, list(block))}: " if block else ""
        lines += _block_finding(spec, points, shown, where)
    return lines


def _block_finding(spec: StudySpec, points: list[PointResult], keys: list[str], where: str) -> list[str]:
    order = ranked(spec, points)
    best = order[0]
    s = best.spread()
    better = "higher" if spec.goal == "maximize" else "lower"
    lines = [
        f"{where}{label(best.point, keys)} gave the best {spec.metric} ({better} is better): {fmt(s.mean)} ± "
        f"{fmt(s.sd)} over {s.n} seed{'s' if s.n != 1 else ''}."
    ]
    if len(order) > 1:
        second = order[1]
        p = paired(best.values, second.values, spec.goal)
        if p is not None:
            lines.append(
                f"The runner-up, {label(second.point, keys)}, has {fmt(second.spread().mean)}; paired on "
                f"{p.n} common seed{'s' if p.n != 1 else ''} the difference is {fmt(p.diff.mean)} "
                f"({gap_words(p, spec.margin)})."
            )
    base = block_baseline(spec, points)
    if base is not None and base is not best:
        p = paired(best.values, base.values, spec.goal)
        if p is not None:
            lines.append(
                f"Against the baseline ({label(base.point, keys)}): {fmt(p.diff.mean)} ({gap_words(p, spec.margin)})."
            )
    return lines


def blocked_compare(
    spec: StudySpec, groups: list[PointResult], keys: list[str], a: dict, b: dict
) -> tuple[Paired | None, list[tuple[dict, Paired]]]:
    """`a` against `b` within each block that has both, paired by seed; and over those blocks: per seed (one
    every such block has), the mean of the blocks' differences, so no difference crosses a block.

    `a` and `b` name arms by the question's factor keys: a factor key they leave out is unset (full
    fine-tuning is not full fine-tuning with LLRD), while any other key is averaged over."""
    unset = {k: None for k in spec.factor_keys if k in keys}
    a, b = {**unset, **a}, {**unset, **b}
    per_block, sides = [], []
    for block, points in blocks(spec, groups, keys):
        p = compare(points, a, b, spec.goal)
        if p is not None:
            per_block.append((block, p))
            sides.append((seed_means(matching(points, a)), seed_means(matching(points, b))))
    if not per_block:
        return None, []
    seeds = sorted(set.intersection(*(set(left) & set(right) for left, right in sides)))
    mean_a = {s: sum(left[s] for left, _ in sides) / len(sides) for s in seeds}
    mean_b = {s: sum(right[s] for _, right in sides) / len(sides) for s in seeds}
    return paired(mean_a, mean_b, spec.goal), per_block


def claim_compare(
    spec: StudySpec, groups: list[PointResult], keys: list[str]
) -> tuple[dict, dict, Paired | None, list[tuple[dict, Paired]]]:
    """(prefer, over, pooled, per block): the study's claim compared by blocked_compare, the one comparison
    behind the report's verdict and the answers page's."""
    prefer, over, compared = _claim_sides(spec, groups)
    pooled, per_block = blocked_compare(spec, compared, keys, prefer, over) if compared else (None, [])
    return prefer, over, pooled, per_block


def _claim_sides(spec: StudySpec, groups: list[PointResult]) -> tuple[dict, dict, list[PointResult]]:
    """(prefer, over, the results they are compared on) for the study's claim. A search's `prefer: best` is the
    searched configuration best on the confirmation seeds, among those that ran all of them; both sides are then
    compared on those seeds only (the search's own seed picked the best: counting it would flatter it)."""
    claim = spec.published.claim
    if not claim.best:
        return claim.prefer, claim.over, groups
    seeds = set(spec.confirm_seeds)
    confirmed = [
        PointResult(g.point, {s: v for s, v in g.values.items() if s in seeds}, g.results, g.phase) for g in groups
    ]
    over = {k: claim.over.get(k, spec.baseline.get(k)) for k in spec.search}
    candidates = [
        g for g in confirmed if set(g.values) == seeds and not all(g.point.get(k) == v for k, v in over.items())
    ]
    if not candidates:
        return {}, over, []
    return ranked(spec, candidates)[0].point, over, [g for g in confirmed if g.values]


def verdict(spec: StudySpec, groups: list[PointResult], keys: list[str] | None = None) -> str | None:
    """Does this run agree with the published claim? None when the study states none. The claim is tested
    within each block and over the blocks (the mean of the within-block differences, paired by seed)."""
    if spec.published is None or spec.published.claim is None:
        return None
    claim = spec.published.claim
    keys = keys if keys is not None else sorted({k for g in groups for k in g.point})
    prefer, over, p, per_block = claim_compare(spec, groups, keys)
    a, b = label(prefer, list(prefer)) if prefer else "the best confirmed configuration", label(over, list(over))
    if p is None:
        return f"Not yet testable: the points {a} and {b} both need finished trials with a common seed."
    where = f"{a} vs {b}: {fmt(p.diff.mean)} on {spec.metric} ({gap_words(p, spec.margin)})"
    word = _judge(claim.relation, spec.goal, p, spec.margin)
    if len(per_block) > 1:
        where += "; within each block: " + "; ".join(
            f"{label(block, list(block))} {fmt(q.diff.mean)}"
            + (f" (CI {fmt(q.diff.low)} to {fmt(q.diff.high)})" if q.n > 1 else "")
            for block, q in per_block
        )
    return f"This run {word}: {where}."


def settle_command(spec: StudySpec, groups: list[PointResult], keys: list[str]) -> str | None:
    """The command that grows the study to the seeds its claim's comparison needs, when that comparison is
    within seed noise (None otherwise): a search grows its confirmation seeds, which its claim is judged on."""
    if spec.published is None or spec.published.claim is None or (spec.is_search and not spec.confirm_top):
        return None  # no claim, or a search that confirms nothing (a search's --seeds are its confirmation seeds)
    _, _, p, _ = claim_compare(spec, groups, keys)
    if p is None or judgement(spec.published.claim.relation, spec.goal, p, spec.margin) != "inconclusive":
        return None
    n = seeds_needed(p)
    have = list(spec.confirm_seeds if spec.is_search else spec.seeds)
    if not n or n <= len(have):
        return None
    more = have + [s for s in range(max(have) + 1, max(have) + 1 + n) if s not in have][: n - len(have)]
    scale = f" --scale {spec.scale}" if spec.scale else ""
    return f"masklab study {spec.source or spec.name}{scale} --seeds {seeds_text(more)}"


def judgement(relation: str, goal: str, p: Paired, margin: float) -> str:
    """The one verdict rule, shared by the report and the answers page: which of agrees, disagrees,
    margin_equivalent, margin_noninferior, inconclusive or one_seed the paired difference (prefer - over)
    gives a claim.

    "better" needs the interval above zero; an interval inside the margin says the two are equivalent, which
    contradicts "better". "at least as good" holds when the interval stays above -margin (non-inferior), and
    fails when it lies below zero. Anything else is inconclusive; gap_words says what would settle it."""
    if p.n < 2:
        return "one_seed"
    sign = 1 if goal == "maximize" else -1  # > 0: prefer is better
    lo, hi = sorted((sign * p.diff.low, sign * p.diff.high))
    if lo > 0:
        return "agrees"
    if hi < 0:
        return "disagrees"
    if relation == "better" and equivalent(p, margin):
        return "margin_equivalent"
    if relation == "at_least" and margin > 0 and lo > -margin:
        return "margin_noninferior"
    return "inconclusive"


def _judge(relation: str, goal: str, p: Paired, margin: float) -> str:
    """The verdict in the report's words."""
    reason = judgement(relation, goal, p, margin)
    if reason == "one_seed":
        d = p.diff.mean if goal == "maximize" else -p.diff.mean
        return ("agrees" if d >= 0 else "disagrees") + " (one seed: no test of noise)"
    return {
        "agrees": "agrees",
        "disagrees": "disagrees",
        "margin_equivalent": f"disagrees (the two are equivalent within ±{fmt(margin)}, so neither is better)",
        "margin_noninferior": f"agrees (at least as good: any shortfall is smaller than the margin {fmt(margin)})",
        "inconclusive": "is inconclusive (the gap is within seed noise)",
    }[reason]
