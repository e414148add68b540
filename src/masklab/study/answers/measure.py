"""The numbers of one study's answer, recomputed from its results.csv with the study package's own functions.

Every comparison is made within a block (finding.blocks: the same task, corpus, checkpoint ...) and paired
by seed; the published claim is tested within each block and over the blocks (finding.blocked_compare: per
seed, the mean of the blocks' differences). No number here compares two points of different blocks.

The verdict is one of agrees / disagrees / inconclusive (or not tested / no claim), from the paired 95%
interval of (prefer - over), by finding.verdict's rule: it agrees when the interval shows `prefer` better,
disagrees when it shows `over` better; with the study's margin (metric: {margin: ...}) an interval inside
+-margin contradicts "better" and one above -margin confirms "at least as good". Otherwise it is
inconclusive and says what would settle it: the seeds a gap of the observed size needs at the observed
paired sd (finding.seeds_needed), or, when no practical number would, the bound the run can promise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from masklab.study.answers.gather import StudyFolder, load_folder_spec, read_rows
from masklab.study.answers.text import KEY_PLOT
from masklab.study.finding import (
    block_baseline,
    blocking_keys,
    blocks,
    claim_compare,
    judgement,
    label,
    ranked,
    seeds_needed,
)
from masklab.study.results import PointResult, Row, by_point, varying_keys
from masklab.study.spec import StudySpec
from masklab.study.stats import Paired, Spread, paired

SEARCH_ROWS = 8  # a search's table shows its best configurations, not all of them


@dataclass
class Verdict:
    kind: str  # agrees | disagrees | inconclusive | untested | no_claim
    reason: str  # agrees | disagrees | seeds | equivalent | one_seed | untested | no_claim
    prefer: str = ""
    over: str = ""
    relation: str = ""
    pooled: Paired | None = None  # prefer - over, over the blocks
    per_block: list[tuple[str, Paired]] = field(default_factory=list)
    seeds: int | None = None  # seeds that would settle a gap of this size
    bound: float | None = None  # the equivalence bound: the interval's wider end
    consistent: bool = False  # "at least as good" and no shortfall beyond noise
    margin: float = 0.0  # the study's stated margin, when a verdict rests on it


@dataclass
class TableRow:
    block: str
    setting: str
    spread: Spread
    baseline: bool = False
    vs: Paired | None = None  # against its own block's baseline


@dataclass
class Best:
    block: str  # "" when nothing blocks
    setting: str
    spread: Spread


@dataclass
class StudyAnswer:
    name: str
    spec: StudySpec
    groups: list[PointResult]
    keys: list[str]  # the keys that vary
    blocking: list[str]  # the varying keys that block
    table: list[TableRow]
    best: list[Best]  # per block
    verdict: Verdict
    configs: int  # points with a finished trial
    failed: int
    trial_seconds: float
    timed_trials: int
    plot: Path | None
    # the published finding's further claims (StudySpec.further_claims), measured alike from the same rows
    also: list[StudyAnswer] = field(default_factory=list)
    # the seeds its rows hold (a search: its confirmation seeds), more than the study file's once --seeds grew it
    seeds: list[int] = field(default_factory=list)


def measure(folder: StudyFolder) -> StudyAnswer:
    spec = load_folder_spec(folder)
    rows = read_rows(folder.path / "results.csv", spec)
    return measure_rows(spec, rows, folder.path)


def measure_rows(spec: StudySpec, rows: list[Row], path: Path) -> StudyAnswer:
    groups = by_point(spec, rows)
    keys = varying_keys(spec, groups) if groups else list(spec.grid or spec.search)
    grouped = blocks(spec, groups, keys) if groups else []
    timed = [r.seconds for r in rows if r.seconds is not None]
    return StudyAnswer(
        name=spec.name,
        spec=spec,
        groups=groups,
        keys=keys,
        blocking=blocking_keys(spec, keys),
        table=table(spec, groups, keys),
        best=[_best(spec, block, points, keys) for block, points in grouped],
        verdict=verdict(spec, groups, keys),
        configs=len(groups),
        failed=sum(1 for r in rows if r.state == "failed"),
        trial_seconds=sum(timed),
        timed_trials=len(timed),
        plot=key_plot(spec.name, path),
        also=[measure_rows(more, rows, path) for more in spec.further_claims()],
        seeds=sorted({r.seed for r in rows if r.phase == ("confirm" if spec.is_search else "grid")}),
    )


def _best(spec: StudySpec, block: dict, points: list[PointResult], keys: list[str]) -> Best:
    top = ranked(spec, points)[0]  # ranked within its block only
    return Best(_block(block), label(top.point, _shown(spec, keys)), top.spread())


def _block(block: dict) -> str:
    return label(block, list(block)) if block else ""


def _shown(spec: StudySpec, keys: list[str]) -> list[str]:
    """The keys a setting is named by within its block: the varying ones that do not block."""
    return [k for k in keys if k not in blocking_keys(spec, keys)] or keys


def verdict(spec: StudySpec, groups: list[PointResult], keys: list[str]) -> Verdict:
    if spec.published is None or spec.published.claim is None:
        return Verdict("no_claim", "no_claim")
    claim = spec.published.claim
    prefer, over, pooled, per_block = claim_compare(spec, groups, keys)
    v = Verdict(
        "untested",
        "untested",
        prefer=label(prefer, list(prefer)) if prefer else "best",
        over=label(over, list(over)),
        relation=claim.relation,
        pooled=pooled,
        per_block=[(_block(b), p) for b, p in per_block],
    )
    if pooled is None:
        return v
    reason = judgement(claim.relation, spec.goal, pooled, spec.margin)  # the report's rule (finding.verdict)
    kind = {"margin_equivalent": "disagrees", "margin_noninferior": "agrees", "one_seed": "inconclusive"}
    v.kind, v.reason = kind.get(reason, reason), reason
    if reason in ("agrees", "disagrees", "one_seed"):
        return v
    # within seed noise: what would settle it, and the margin the verdict rests on where it allows one
    v.seeds = seeds_needed(pooled)
    v.bound = max(abs(pooled.diff.low), abs(pooled.diff.high))
    v.margin = spec.margin
    if reason == "inconclusive":
        v.reason = "seeds" if v.seeds else "equivalent"
        v.consistent = claim.relation == "at_least" and (1 if spec.goal == "maximize" else -1) * pooled.diff.mean >= 0
    return v


def table(spec: StudySpec, groups: list[PointResult], keys: list[str]) -> list[TableRow]:
    """Each point with its mean, interval and paired difference against its own block's baseline; a search
    lists its best configurations (one block: nothing else varies)."""
    if spec.is_search:
        return [TableRow("", label(g.point, keys), g.spread()) for g in ranked(spec, groups)[:SEARCH_ROWS]]
    out = []
    for block, points in blocks(spec, groups, keys) if groups else []:
        base = block_baseline(spec, points)
        for g in points:
            vs = paired(g.values, base.values, spec.goal) if base is not None and g is not base else None
            out.append(TableRow(_block(block), label(g.point, _shown(spec, keys)), g.spread(), g is base, vs))
    return out


def blocks_won(answer: StudyAnswer) -> tuple[int, int]:
    """In how many blocks `prefer` did better than `over`, and in how many beyond seed noise."""
    sign = 1 if answer.spec.goal == "maximize" else -1
    won = sum(1 for _, p in answer.verdict.per_block if sign * p.diff.mean > 0)
    beyond = sum(1 for _, p in answer.verdict.per_block if p.n > 1 and min(sign * p.diff.low, sign * p.diff.high) > 0)
    return won, beyond


def key_plot(name: str, folder: Path) -> Path | None:
    """The study's plot that shows the answer (text.KEY_PLOT, else the metric per point), if it was drawn."""
    plots = folder / "plots"
    for candidate in (KEY_PLOT.get(name, "points"), "points", "tradeoff", "search", "curves", "profiles"):
        path = plots / f"{candidate}.svg"
        if path.is_file():
            return path
    return None
