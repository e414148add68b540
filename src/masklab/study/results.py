"""A study's results, read from its storage: one row per trial, and per point the values by seed.

Everything a report needs travels in the trials' user attributes (point, seed, phase, key, error and
every number of the summary), so a report can be written on any machine that reaches the storage.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from masklab.fsutil import write_text_atomic
from masklab.study.spec import LABEL, StudySpec, canonical
from masklab.study.stats import Paired, Spread, paired, spread


@dataclass
class Row:
    number: int
    state: str  # complete | failed | pruned | running | waiting | retried | duplicate (set aside, never run)
    phase: str  # grid | search | confirm
    point: dict
    seed: int
    key: str
    value: float | None
    seconds: float | None
    error: str
    retry_of: int | None
    results: dict
    curves: list = field(default_factory=list)  # learning curves as stored (trials.stored_curves): no disk needed


@dataclass
class PointResult:
    point: dict
    values: dict[int, float]  # seed -> the study's metric
    results: dict[int, dict] = field(default_factory=dict)  # seed -> every number of that trial's summary
    phase: str = "grid"

    @property
    def label(self) -> str:
        return canonical(self.point)

    def spread(self) -> Spread:
        return spread([self.values[s] for s in sorted(self.values)])

    def series(self, metric: str) -> dict[int, float]:
        """seed -> `metric` (any number of the summary, dotted), where the trial has it."""
        return {s: r[metric] for s, r in sorted(self.results.items()) if isinstance(r.get(metric), (int, float))}


def rows(study) -> list[Row]:
    """One row per optuna trial; a failed attempt that was enqueued again reads "retried", a second copy of a
    (point, seed) that was set aside unrun reads "duplicate"."""
    out = []
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        attrs = t.user_attrs
        point = json.loads(attrs["point"]) if "point" in attrs else {}
        state = (
            "retried"
            if t.number in retried
            else "duplicate"
            if "duplicate_of" in attrs
            else {"fail": "failed"}.get(t.state.name.lower(), t.state.name.lower())
        )
        out.append(
            Row(
                t.number,
                state,
                attrs.get("phase", ""),
                point,
                attrs.get("seed", 0),
                attrs.get("key", ""),
                t.value if t.state.name == "COMPLETE" else None,
                attrs.get("seconds"),
                attrs.get("error", ""),
                attrs.get("retry_of"),
                attrs.get("results", {}),
                attrs.get("curves", []),
            )
        )
    return out


def by_point(spec: StudySpec, all_rows: list[Row]) -> list[PointResult]:
    """Completed trials grouped by point, in the study's point order (searches: order of first trial);
    a trial run twice (a duplicate or a retry) counts once."""
    groups: dict[str, PointResult] = {}
    seen_keys = set()
    for row in all_rows:
        if row.state != "complete" or row.key in seen_keys:
            continue
        seen_keys.add(row.key)
        group = groups.setdefault(canonical(row.point), PointResult(row.point, {}, {}, row.phase))
        group.values[row.seed] = row.value
        group.results[row.seed] = row.results
    if not spec.is_search:
        order = {canonical(p): i for i, p in enumerate(spec.grid_points())}
        return sorted(groups.values(), key=lambda g: order.get(g.label, len(order)))
    return list(groups.values())


def matching(groups: list[PointResult], subset: dict) -> list[PointResult]:
    return [g for g in groups if all(g.point.get(k) == v for k, v in subset.items())]


def seed_means(groups: list[PointResult]) -> dict[int, float]:
    """Per seed, the mean over the given points (a claim about one key averages over the others)."""
    seeds = set.intersection(*(set(g.values) for g in groups)) if groups else set()
    return {s: sum(g.values[s] for g in groups) / len(groups) for s in sorted(seeds)}


def compare(groups: list[PointResult], a: dict, b: dict, goal: str) -> Paired | None:
    left, right = matching(groups, a), matching(groups, b)
    if not left or not right:
        return None
    return paired(seed_means(left), seed_means(right), goal)


def varying_keys(spec: StudySpec, groups: list[PointResult]) -> list[str]:
    """The keys whose value differs between points (a study of named points: their `_label`)."""
    if groups and all(LABEL in g.point for g in groups):
        return [LABEL]
    keys: list[str] = []
    for g in groups:
        for k in g.point:
            if k not in keys:
                keys.append(k)
    return [k for k in keys if len({canonical(g.point.get(k)) for g in groups}) > 1] or keys


def write_csv(all_rows: list[Row], path: Path) -> None:
    """results.csv: one row per trial: its parameters, seed, status, value and every number of its summary."""
    params = sorted({k for r in all_rows for k in r.point})
    numbers = sorted({k for r in all_rows for k in r.results})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["trial", "state", "phase", *params, "seed", "value", "seconds", "key", "retry_of", "error", *numbers]
    )
    for r in all_rows:
        writer.writerow(
            [
                r.number,
                r.state,
                r.phase,
                *[_cell(r.point.get(p)) for p in params],
                r.seed,
                _cell(r.value),
                _cell(r.seconds),
                r.key,
                "" if r.retry_of is None else r.retry_of,
                r.error,
                *[_cell(r.results.get(k)) for k in numbers],
            ]
        )
    write_text_atomic(path, buffer.getvalue())


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)
