"""Comparisons that answer the question: within each block (task), paired by seed, never across blocks."""

import math
import statistics

import pytest
from scipy import stats

from masklab.errors import UserError
from masklab.study.finding import blocked_compare, finding, seeds_needed, verdict
from masklab.study.report import point_table
from masklab.study.results import PointResult
from masklab.study.spec import parse_spec
from masklab.study.stats import Paired, spread

# test accuracy by (task, init) and seed: sotu-era is far easier than rt, so its *random* init beats rt's
# pretrained one; a comparison across tasks would call random the winner
VALUES = {
    ("rt", "minilm"): {0: 0.80, 1: 0.78, 2: 0.83},
    ("rt", "random"): {0: 0.60, 1: 0.62, 2: 0.58},
    ("era", "minilm"): {0: 0.97, 1: 0.95, 2: 0.96},
    ("era", "random"): {0: 0.90, 1: 0.93, 2: 0.91},
}


def spec():
    return parse_spec(
        {
            "name": "blocks",
            "run": "finetune",
            "base": {"mode": "full"},
            "grid": {"task": ["rt", "era"], "init": ["minilm", "random"]},
            "seeds": [0, 1, 2],
            "metric": {"name": "test_accuracy", "goal": "maximize"},
            "baseline": {"init": "random"},
            "published": {
                "finding": "pretrained beats random",
                "citation": "a paper",
                "claim": {"prefer": {"init": "minilm"}, "over": {"init": "random"}, "relation": "better"},
            },
        },
        "blocks.yaml",
    )


def groups():
    return [PointResult({"task": t, "init": i}, dict(v)) for (t, i), v in VALUES.items()]


def test_findings_rank_only_within_a_task():
    lines = finding(spec(), groups(), ["task", "init"])
    rt = [line for line in lines if "rt" in line or "task=rt" in line]
    assert any(line.startswith("In task=rt: init=minilm gave the best") for line in lines), lines
    assert any(line.startswith("In task=era: init=minilm gave the best") for line in lines), lines
    for line in lines:  # a sentence names one block's points only: the era random point never meets rt's
        assert not ("0.9133" in line and "task=rt" in line), line
    assert rt


def test_the_claim_is_paired_within_tasks_and_matches_a_hand_computation():
    s = spec()
    pooled, per_block = blocked_compare(s, groups(), ["task", "init"], {"init": "minilm"}, {"init": "random"})
    by_hand = [
        statistics.fmean(VALUES[(t, "minilm")][seed] - VALUES[(t, "random")][seed] for t in ("rt", "era"))
        for seed in (0, 1, 2)
    ]
    mean, sd = statistics.fmean(by_hand), statistics.stdev(by_hand)
    half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)
    assert math.isclose(pooled.diff.mean, mean) and math.isclose(pooled.diff.sd, sd)
    assert math.isclose(pooled.diff.low, mean - half) and math.isclose(pooled.diff.high, mean + half)
    rt = dict((b["task"], p) for b, p in per_block)["rt"]
    assert math.isclose(rt.diff.mean, statistics.fmean([0.20, 0.16, 0.25]))
    text = verdict(s, groups(), ["task", "init"])
    assert text.startswith("This run agrees") and "within each block: task=rt" in text


def test_the_baseline_column_uses_the_baseline_of_the_same_task():
    columns, rows = point_table(spec(), groups(), ["task", "init"])
    col = columns.index(next(c for c in columns if c.startswith("vs baseline")))
    era_minilm = next(r for r in rows if r[0] == "era, minilm")
    assert (
        float(era_minilm[col]) == statistics.fmean([0.07, 0.02, 0.05])
        or abs(float(era_minilm[col]) - statistics.fmean([0.07, 0.02, 0.05])) < 1e-3
    )
    assert next(r for r in rows if r[0] == "era, random")[col] == "baseline"


def test_seeds_needed_follows_from_the_paired_sd():
    for mean, sd in [(0.01, 0.02), (0.05, 0.03), (0.002, 0.01)]:
        p = Paired(3, spread([mean - sd, mean, mean + sd]), 2, 0)
        n = seeds_needed(p)
        width = lambda k: (stats.t.ppf(0.975, k - 1) if k < 10 else 1.959964) * p.diff.sd / math.sqrt(k)  # noqa: E731
        assert n is not None and width(n) < abs(mean) and (n == 2 or width(n - 1) >= abs(mean)), (mean, sd, n)


def claim_spec(relation: str, margin: float):
    return parse_spec(
        {
            "name": "margin",
            "run": "pretrain",
            "grid": {"arm": ["a", "b"]},
            "seeds": [0, 1, 2, 3],
            "metric": {"name": "acc", "goal": "maximize", "margin": margin},
            "published": {
                "finding": "a is as good as b",
                "citation": "a paper",
                "claim": {"prefer": {"arm": "a"}, "over": {"arm": "b"}, "relation": relation},
            },
        },
        "margin.yaml",
    )


def arms(diffs: list[float]) -> list[PointResult]:
    b = {s: 0.5 + 0.01 * s for s in range(len(diffs))}
    return [PointResult({"arm": "a"}, {s: b[s] + d for s, d in enumerate(diffs)}), PointResult({"arm": "b"}, b)]


def test_a_margin_turns_seed_noise_into_an_equivalence_verdict():
    tiny = [0.001, -0.002, 0.002, -0.001]  # paired CI about +-0.003: inside a 0.01 margin
    assert verdict(claim_spec("better", 0.01), arms(tiny)).startswith("This run disagrees (the two are equivalent")
    assert verdict(claim_spec("at_least", 0.01), arms(tiny)).startswith("This run agrees (at least as good")
    # without a margin the same numbers settle nothing, and the sentence says how many seeds would
    text = verdict(claim_spec("at_least", 0.0), arms(tiny))
    assert text.startswith("This run is inconclusive") and "seeds" in text
    # a clear shortfall is a disagreement whatever the margin
    assert verdict(claim_spec("at_least", 0.01), arms([-0.05, -0.04, -0.06, -0.05])).startswith("This run disagrees")
    # a wide interval reaching below -margin is inconclusive, with the seeds that would bound it
    wide = [0.03, -0.04, 0.05, -0.03]
    text = verdict(claim_spec("at_least", 0.01), arms(wide))
    assert text.startswith("This run is inconclusive") and "seeds" in text


def test_a_bad_margin_is_one_clear_error():
    with pytest.raises(UserError, match="margin must be a number >= 0"):
        parse_spec({"name": "m", "run": "pretrain", "grid": {"a": [1, 2]}, "metric": {"name": "x", "margin": -1}}, "m")


def test_a_claim_names_an_arm_so_its_variants_are_neither_blocks_nor_averaged_in():
    # q3's shape: mode is the factor, llrd a variant of one mode; full with LLRD is far worse than plain full
    s = parse_spec(
        {
            "name": "variants",
            "run": "finetune",
            "grid": {"task": ["rt", "era"], "mode": ["probe", "full"]},
            "points": [{"task": "rt", "mode": "full", "llrd": 0.8}, {"task": "era", "mode": "full", "llrd": 0.8}],
            "seeds": [0, 1, 2],
            "metric": {"name": "test_accuracy", "goal": "maximize"},
            "baseline": {"mode": "probe"},
            "factor": ["mode", "llrd"],
            "published": {
                "finding": "full beats probe",
                "citation": "a paper",
                "claim": {"prefer": {"mode": "full"}, "over": {"mode": "probe"}, "relation": "better"},
            },
        },
        "variants.yaml",
    )
    values = {"probe": [0.60, 0.62, 0.61], "full": [0.80, 0.79, 0.82], "llrd": [0.40, 0.45, 0.41]}
    gs = []
    for task in ("rt", "era"):
        gs.append(PointResult({"task": task, "mode": "probe"}, dict(enumerate(values["probe"]))))
        gs.append(PointResult({"task": task, "mode": "full"}, dict(enumerate(values["full"]))))
        gs.append(PointResult({"task": task, "mode": "full", "llrd": 0.8}, dict(enumerate(values["llrd"]))))
    keys = ["task", "mode", "llrd"]
    pooled, per_block = blocked_compare(s, gs, keys, {"mode": "full"}, {"mode": "probe"})
    assert [b for b, _ in per_block] == [{"task": "rt"}, {"task": "era"}]  # llrd does not block
    expected = statistics.fmean(f - p for f, p in zip(values["full"], values["probe"]))
    assert math.isclose(pooled.diff.mean, expected)  # plain full only: the LLRD variant is not averaged in
    _, rows = point_table(s, gs, keys)
    llrd_row = next(r for r in rows if "0.8" in r[0])
    assert "–" not in llrd_row[-3:]  # the variant is compared with its own task's probe baseline
