"""`masklab answers`: one page for Q1-Q7 recomputed from the studies' results.csv.

A fake finished study with a blocking factor (two tasks x two arms x three seeds, from a results table written
here) checks the page against a hand computation; every shipped study's sentences are checked against its
results.csv, recomputed here with csv and statistics only; bad input is one line and exit 2.
"""

from __future__ import annotations

import csv
import math
import re
import statistics
from pathlib import Path

import pytest
from scipy import stats

from conftest import masklab
from masklab.study.answers.build import default_out, write_answers
from masklab.study.answers.gather import read_rows, study_folders
from masklab.study.answers.measure import measure
from masklab.study.answers.sentences import answer_sentences, verdict_line
from masklab.study.answers.text import QUESTIONS, STUDY_ORDER, TEXT
from masklab.study.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in (ROOT / "docs" / "studies").glob("*/") if (p / "results.csv").is_file())
SVG = "<svg width='10' height='10'><rect width='10' height='10'/></svg>"

# test accuracy by (task, init) and seed: sotu-era is far easier than rt, so its random init beats rt's pretrained
# one; any comparison across tasks would show up as one of the CROSS differences below
VALUES = {
    (0, "minilm"): {0: 0.80, 1: 0.78, 2: 0.83},
    (0, "random"): {0: 0.60, 1: 0.62, 2: 0.58},
    (1, "minilm"): {0: 0.97, 1: 0.95, 2: 0.96},
    (1, "random"): {0: 0.90, 1: 0.93, 2: 0.91},
}


def fmt(x: float) -> str:
    """finding.fmt, written again: four significant digits."""
    return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def t_interval(values: list[float]) -> tuple[float, float, float, float]:
    """mean, sd, and the Student-t 95% interval of the mean."""
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    half = stats.t.ppf(0.975, len(values) - 1) * sd / math.sqrt(len(values))
    return mean, sd, mean - half, mean + half


def write_study(folder: Path, name: str, points: list[dict], values: list[dict[int, float]], states=None) -> Path:
    """A finished study folder as `masklab study` leaves it: results.csv (write_csv's columns), report.md, a plot."""
    folder.mkdir(parents=True)
    params = sorted({k for p in points for k in p})
    with (folder / "results.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["trial", "state", "phase", *params, "seed", "value", "seconds", "key", "retry_of", "error"])
        n = 0
        for point, by_seed in zip(points, values):
            for seed, value in by_seed.items():
                state = (states or {}).get(n, "complete")
                cells = ["" if point.get(k) is None else str(point[k]) for k in params]
                w.writerow(
                    [n, state, "grid", *cells, seed, value if state == "complete" else "", 60.0, f"k{n}", "", ""]
                )
                n += 1
    (folder / "report.md").write_text(f"# Study {name}\n\nrun: x; seeds [0]; metric m (maximize); scale quick.\n")
    (folder / "plots").mkdir()
    (folder / "plots" / "points.svg").write_text(SVG)
    return folder


@pytest.fixture(scope="module")
def q1(tmp_path_factory):
    """q1-init's grid (two tasks x random / pretrained), values from VALUES, three seeds."""
    spec = load_spec("builtin:q1-init", "quick")
    tasks, inits = spec.grid["task"], spec.grid["init"]
    arm = {i: ("random" if i == "random" else "minilm") for i in inits}
    points = [{"task": t, "init": i} for t in tasks for i in inits]
    values = [VALUES[(tasks.index(p["task"]), arm[p["init"]])] for p in points]
    source = tmp_path_factory.mktemp("studies")
    write_study(source / "q1-init", "q1-init", points, values)
    return source, tasks


@pytest.fixture(scope="module")
def q1_page(q1, tmp_path_factory):
    source, _ = q1
    out = tmp_path_factory.mktemp("answers")
    write_answers([source], out, "en")
    return (out / "answers.md").read_text(encoding="utf-8"), (out / "answers.html").read_text(encoding="utf-8")


def test_the_page_lists_all_seven_questions_and_says_which_have_not_run(q1_page):
    md, page = q1_page
    for q, names in QUESTIONS:
        assert f"## {q}. {TEXT['en'][q]}" in md
        assert f"id='{q.lower()}'" in page
        for name in names:
            command = f"masklab study builtin:{name} --scale quick"
            assert command in md and command in page
            if name != "q1-init":
                assert f"### {name} — not run yet" in md
    assert "### q1-init\n" in md and md.count("not run yet") >= len(STUDY_ORDER) - 1
    assert "<svg" in page and "<script" not in page


def test_paired_differences_and_cis_equal_a_hand_computation_within_each_task(q1, q1_page):
    md, _ = q1_page
    _, tasks = q1
    rows = [line for line in md.splitlines() if line.startswith("| task=")]
    for i, task in enumerate(tasks):
        diffs = [VALUES[(i, "minilm")][s] - VALUES[(i, "random")][s] for s in (0, 1, 2)]
        mean, _, low, high = t_interval(diffs)
        ours = [line for line in rows if line.startswith(f"| task={task} |")]
        (pretrained,) = [line for line in ours if "| init=random |" not in line]
        assert f"| {fmt(mean)} | {fmt(low)} to {fmt(high)} | 3/3 |" in pretrained, pretrained
        (random_row,) = [line for line in ours if "| init=random |" in line]
        assert "| baseline |" in random_row
    # the claim over the tasks: per seed, the mean of the two tasks' differences
    pooled = [statistics.fmean(VALUES[(i, "minilm")][s] - VALUES[(i, "random")][s] for i in (0, 1)) for s in (0, 1, 2)]
    mean, _, low, high = t_interval(pooled)
    assert f"a paired difference of {fmt(mean)} (95% CI {fmt(low)} to {fmt(high)}) over 3 seeds" in md
    assert "**Verdict:** Agrees" in md and "in 2, beyond seed noise in 1." in md  # era: 0.047 (-0.016 to 0.11)


def test_no_difference_crosses_a_task(q1, q1_page):
    md, page = q1_page
    cross = []
    for a in VALUES:
        for b in VALUES:
            if a[0] != b[0]:  # two points of different tasks
                cross.append(statistics.fmean(VALUES[a][s] - VALUES[b][s] for s in (0, 1, 2)))
    numbers = set(re.findall(r"-?\d+\.\d+", md))
    assert not numbers & {fmt(c) for c in cross}, sorted(numbers & {fmt(c) for c in cross})
    # the best is named per task, never over both
    source, tasks = q1
    answer = measure(study_folders([source])[0])
    assert [b.block for b in answer.best] == [f"task={t}" for t in tasks]
    for row in answer.table:
        if row.vs is not None:
            assert row.block.startswith("task=") and row.setting != "init=random"


def test_inconclusive_says_how_many_seeds_would_settle_it(tmp_path):
    spec = load_spec("builtin:q4-masking-rate", "quick")
    rates = spec.grid["masking.rate"]
    values = [{0: 0.50 + 0.01 * i, 1: 0.52, 2: 0.49 + 0.02 * i} for i, _ in enumerate(rates)]
    folder = write_study(
        tmp_path / "studies" / "q4-masking-rate", spec.name, [{"masking.rate": r} for r in rates], values
    )
    answer = measure(study_folders([folder])[0])
    prefer, over = rates.index(0.4), rates.index(0.15)
    diffs = [values[prefer][s] - values[over][s] for s in (0, 1, 2)]
    mean, sd, low, high = t_interval(diffs)
    assert low < 0 < high or low > 0  # the fixture's gap: check the page says what the interval says
    needed = next(n for n in range(2, 1001) if stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) < abs(mean))
    line = verdict_line(answer, "en")
    if low > 0:
        assert line.startswith("Agrees")
    else:
        assert line.startswith("Inconclusive") and f"about {needed} seeds would settle it" in line
        assert f"paired sd ({fmt(sd)})" in line


def test_a_study_grown_beyond_its_scale_is_reproduced_with_its_seeds(q1, tmp_path):
    """q1-init's quick scale has seeds 0-2; a shipped answer grown to 0-4 (--seeds) names 0-4 in its command."""
    spec = load_spec("builtin:q1-init", "quick")
    points = [{"task": t, "init": i} for t in spec.grid["task"] for i in spec.grid["init"]]
    values = [{s: 0.5 + 0.01 * s + 0.1 * n for s in range(5)} for n, _ in enumerate(points)]
    write_study(tmp_path / "grown" / "q1-init", spec.name, points, values)
    write_answers([tmp_path / "grown"], tmp_path / "out", "en")
    md = (tmp_path / "out" / "answers.md").read_text(encoding="utf-8")
    assert "`masklab study builtin:q1-init --scale quick --seeds 0-4`" in md
    source, _ = q1  # the scale's own seeds: the plain command
    write_answers([source], tmp_path / "plain", "en")
    assert "`masklab study builtin:q1-init --scale quick`" in (tmp_path / "plain" / "answers.md").read_text()


def test_the_study_margin_gives_the_same_verdict_as_the_study_report(tmp_path):
    """Within seed noise but inside the study's margin: "at least as good" holds, "better" does not, and the
    page says so in both languages exactly as finding.verdict does in the study's own report."""
    spec = load_spec("builtin:q4-masking-rate", "quick")  # claim: 40% at least as good as 15%, margin 0.01
    rates = spec.grid["masking.rate"]
    tiny = {0: 0.001, 1: -0.002, 2: 0.002}
    values = [{s: 0.5 + 0.01 * s + (tiny[s] if r == 0.4 else 0.0) for s in tiny} for r in rates]
    folder = write_study(tmp_path / "a" / "q4-masking-rate", spec.name, [{"masking.rate": r} for r in rates], values)
    answer = measure(study_folders([folder])[0])
    assert answer.verdict.kind == "agrees" and verdict_line(answer, "en").startswith("Agrees: masking.rate=0.4 is at")
    assert "حاشیهٔ" in verdict_line(answer, "fa")
    spec = load_spec("builtin:q1-init", "quick")  # claim: pretrained better than random, margin 0.01
    points = [{"task": t, "init": i} for t in spec.grid["task"] for i in spec.grid["init"]]
    values = [{s: 0.7 + 0.01 * s + (tiny[s] if p["init"] != "random" else 0.0) for s in tiny} for p in points]
    folder = write_study(tmp_path / "b" / "q1-init", spec.name, points, values)
    answer = measure(study_folders([folder])[0])
    assert answer.verdict.kind == "disagrees" and "equivalent" in verdict_line(answer, "en")


def test_devlin_table_8_stands_beside_the_80_10_10_ablation(tmp_path):
    spec = load_spec("builtin:q7-recipe", "quick")
    points = spec.grid_points()
    values = [{0: 0.40 - 0.01 * i, 1: 0.41 - 0.01 * i} for i in range(len(points))]
    source = tmp_path / "studies"
    write_study(source / "q7-recipe", spec.name, points, values)
    write_answers([source], tmp_path / "answers", "en")
    md = (tmp_path / "answers" / "answers.md").read_text(encoding="utf-8")
    assert "Devlin, Chang, Lee & Toutanova 2019" in md and "Table 8" in md
    for split, figures in {
        "80/10/10": "84.2 | 95.4 | 94.9",
        "100/0/0": "84.3 | 94.9 | 94.0",
        "0/0/100": "83.6 | 94.9 | 94.6",
    }.items():
        assert f"| {split} | {figures} |" in md
    assert "| 80/10/10 | 84.2 | 95.4 | 94.9 | 0.405 ± 0.007071 | baseline |" in md


def test_persian_page_reads_right_to_left_and_keeps_values_left_to_right(q1, tmp_path):
    source, _ = q1
    write_answers([source], tmp_path, "fa")
    page = (tmp_path / "answers.fa.html").read_text(encoding="utf-8")
    md = (tmp_path / "answers.fa.md").read_text(encoding="utf-8")
    assert page.startswith('<!doctype html><html lang="fa" dir="rtl">')
    assert "می\u200cکند" in page and "\u200c" in md
    assert '<code dir="ltr">masklab study builtin:q1-init --scale quick</code>' in page
    assert "`masklab study builtin:q1-init --scale quick`" in md
    assert re.search(r'<bdi dir="ltr">-?\d\.\d+</bdi>', page)  # numbers isolated inside Persian sentences
    assert md.startswith('<div dir="rtl" lang="fa">')


def test_default_out_is_beside_the_folder_of_studies(tmp_path):
    assert default_out([tmp_path / "docs" / "studies"]) == tmp_path / "docs" / "answers"
    folder = write_study(tmp_path / "docs" / "studies" / "q1-init", "q1-init", [{"init": "random"}], [{0: 0.5}])
    assert default_out([folder]) == tmp_path / "docs" / "answers"


# ------------------------------------------------------------------------------- every shipped study


def _scale(folder: Path) -> str:
    m = re.search(r"; scale (\w+)[.;]", (folder / "report.md").read_text(encoding="utf-8"))
    return m.group(1) if m else "quick"


def _independent(folder: Path, further: int = 0):
    """The claim's paired difference and each block's best, from results.csv with csv and statistics only
    (further=i: the finding's i-th further claim, whose own keys are its factor)."""
    spec = load_spec(f"builtin:{folder.name}", _scale(folder))
    factor = spec.factor_keys
    if further:
        claim = spec.published.more[further - 1]
        factor = list(dict.fromkeys([*claim.prefer, *claim.over]))
    with (folder / "results.csv").open(encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        lines = list(reader)
    seed_at = header.index("seed")
    params = header[3:seed_at]  # by position: a summary number may share a parameter's name (llrd)
    seen, points = set(), {}
    for line in lines:
        r = dict(zip(header[: header.index("error") + 1], line))
        if r["state"] != "complete" or r["key"] in seen:
            continue
        seen.add(r["key"])
        points.setdefault(tuple(line[3:seed_at]), {})[int(r["seed"])] = float(r["value"])
    varying = [k for i, k in enumerate(params) if len({p[i] for p in points}) > 1]
    if "_label" in params and all(p[params.index("_label")] for p in points):
        varying = ["_label"]
    blocking = [k for k in varying if k not in factor and k != "_label"] if factor else []
    block_of = {p: tuple(p[params.index(k)] for k in blocking) for p in points}
    sign = 1 if spec.goal == "maximize" else -1
    best = {}
    for p, by_seed in points.items():
        mean = statistics.fmean(by_seed.values())
        if block_of[p] not in best or sign * mean > sign * best[block_of[p]][1]:
            best[block_of[p]] = (p, mean)
    claim = (spec.published.more[further - 1] if further else spec.published.claim) if spec.published else None
    if claim is None:
        return spec, None, best
    if claim.best:  # a search's best confirmed configuration against its baseline, on the confirmation seeds only
        confirm = set(spec.confirm_seeds)
        on = {p: {s: v for s, v in by_seed.items() if s in confirm} for p, by_seed in points.items()}
        is_base = {p: all(p[params.index(k)] == str(v) for k, v in claim.over.items()) for p in points}
        confirmed = [p for p in points if set(on[p]) == confirm and not is_base[p]]
        if not confirmed:
            return spec, None, best
        top = max(confirmed, key=lambda p: sign * statistics.fmean(on[p].values()))
        base = next(p for p in points if is_base[p])
        diffs = [on[top][s] - on[base][s] for s in sorted(set(on[top]) & set(on[base]))]
        return spec, (diffs, sum(1 for d in diffs if sign * d > 0)), best

    def side(block, subset):
        # a claim names an arm: a factor key it leaves out is unset (full, not full with LLRD)
        subset = {**{k: "" for k in factor if k in varying}, **subset}
        hits = [
            p for p in points if block_of[p] == block and all(p[params.index(k)] == str(v) for k, v in subset.items())
        ]
        if not hits:
            return None
        seeds = set.intersection(*(set(points[p]) for p in hits))
        return {s: statistics.fmean(points[p][s] for p in hits) for s in seeds}

    sides = [(side(b, claim.prefer), side(b, claim.over)) for b in dict.fromkeys(block_of.values())]
    sides = [(a, b) for a, b in sides if a and b and set(a) & set(b)]
    if not sides:
        return spec, None, best
    seeds = sorted(set.intersection(*(set(a) & set(b) for a, b in sides)))
    diffs = [statistics.fmean(a[s] - b[s] for a, b in sides) for s in seeds]
    return spec, (diffs, sum(1 for d in diffs if sign * d > 0)), best


@pytest.mark.skipif(not SHIPPED, reason="no study has been shipped under docs/studies yet")
@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_each_sentence_agrees_with_the_shipped_results_csv(folder):
    spec, claim, best = _independent(folder)
    answer = measure(study_folders([folder])[0])
    sentences = answer_sentences(answer, "en")
    text = " ".join(sentences)
    line = verdict_line(answer, "en")
    sign = 1 if spec.goal == "maximize" else -1
    if claim is not None:
        diffs, wins = claim
        first = next((s for s in sentences if "difference of" in s), sentences[0])  # a search says its best first
        if len(diffs) == 1:
            assert f"a difference of {fmt(diffs[0])} on the one common seed" in first, first
            assert line.startswith("Inconclusive: ") and "share one seed" in line, line
        else:
            assert f"a paired difference of {fmt(statistics.fmean(diffs))}" in first, first
            assert f"over {len(diffs)} seeds" in first and f"did better on {wins} of them" in first, first
            mean, _, low, high = t_interval(diffs)
            assert f"(95% CI {fmt(low)} to {fmt(high)})" in first, first
            lo, hi = sorted((sign * low, sign * high))
            expected = "Agrees" if lo > 0 else "Disagrees" if hi < 0 else "Inconclusive"
            assert line.startswith(expected), line
            noise = sentences[sentences.index(first) + 1]  # the sentence after the claim's says whether it is noise
            assert ("beyond seed noise" in noise) == (expected != "Inconclusive"), noise
    for i in range(1, 1 + len(spec.published.more if spec.published else [])):
        _, (diffs, wins), _ = _independent(folder, further=i)
        mean, _, low, high = t_interval(diffs)
        said = f"a paired difference of {fmt(mean)} (95% CI {fmt(low)} to {fmt(high)}) over {len(diffs)} seeds"
        assert said in text and f"did better on {wins} of them" in text, (said, text)
        lo, hi = sorted((sign * low, sign * high))
        expected = "Agrees" if lo > 0 else "Disagrees" if hi < 0 else "Inconclusive"
        assert f"{expected}: " in line and f"(95% CI {fmt(low)} to {fmt(high)})" in line.split(". ", 1)[-1], line
    if len(best) == 1 or spec.is_search:
        point, mean = next(iter(best.values())) if len(best) == 1 else max(best.values(), key=lambda b: sign * b[1])
        assert f"{fmt(mean)} ± " in text, text  # the best setting's mean ...
        assert any(v and v in text for v in point), (point, text)  # ... and its name


# ------------------------------------------------------------------------------------------ bad input


def test_a_folder_without_a_study_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = masklab(monkeypatch, capsys, "answers", tmp_path / "empty", "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "holds no study" in err and "Traceback" not in err


def test_a_running_study_is_one_line(tmp_path, monkeypatch, capsys):
    folder = write_study(
        tmp_path / "q1-init", "q1-init", [{"init": "random"}], [{0: 0.5, 1: 0.6}], states={1: "running"}
    )
    code, _, err = masklab(monkeypatch, capsys, "answers", folder, "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "still running (1 running" in err
    started = tmp_path / "studies" / "q2-forgetting"  # a journal but no report yet: its workers are at it
    started.mkdir(parents=True)
    (started / "journal.log").write_text("")
    code, _, err = masklab(monkeypatch, capsys, "answers", started, "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "still running or was stopped" in err
    assert not (tmp_path / "out").exists()


def test_an_unknown_language_is_one_line(tmp_path, monkeypatch, capsys):
    code, _, err = masklab(monkeypatch, capsys, "answers", "--lang", "de", "--out", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "unknown --lang 'de'" in err


def test_run_wants_a_folder_of_studies(tmp_path, monkeypatch, capsys):
    folder = write_study(tmp_path / "q1-init", "q1-init", [{"init": "random"}], [{0: 0.5}])
    code, _, err = masklab(monkeypatch, capsys, "answers", folder, "--run", "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "pass the folder that holds it" in err


def test_an_unknown_study_folder_is_one_line(tmp_path, monkeypatch, capsys):
    folder = write_study(tmp_path / "my-study", "my-study", [{"init": "random"}], [{0: 0.5}])
    code, _, err = masklab(monkeypatch, capsys, "answers", folder, "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "is not a ready-made study" in err


# ------------------------------------------------------------------------------------------------ --run


def test_run_runs_only_the_missing_studies_in_order_and_copies_only_the_report(q1, tmp_path, monkeypatch):
    from masklab.study.answers import run

    source = tmp_path / "studies"
    (source).mkdir()
    q1_source, _ = q1
    for f in ("results.csv", "report.md"):  # q1-init is finished already
        (source / "q1-init").mkdir(exist_ok=True)
        (source / "q1-init" / f).write_text((q1_source / "q1-init" / f).read_text())
    ran = []

    def fake_run_study(spec, source_name, study_dir, **kwargs):  # what worker.run_study leaves in a study dir
        ran.append((spec.name, spec.scale, source_name, study_dir))
        (study_dir / "plots").mkdir(parents=True, exist_ok=True)
        (study_dir / "trials" / "abc" / "checkpoint").mkdir(parents=True, exist_ok=True)
        (study_dir / "journal.log").write_text("{}")
        for name in ("report.md", "report.html"):
            (study_dir / name).write_text(f"# Study {spec.name}\n")
        (study_dir / "results.csv").write_text("trial,state,phase,seed,value,seconds,key,retry_of,error\n")
        (study_dir / "plots" / "points.svg").write_text(SVG)
        return {}

    monkeypatch.setattr(run, "run_study", fake_run_study)
    assert run.run_missing(source, tmp_path / "work", show_progress=False) == STUDY_ORDER[1:]
    assert [r[0] for r in ran] == STUDY_ORDER[1:] and {r[1] for r in ran} == {"quick"}
    assert all(r[2] == f"builtin:{r[0]}" and r[3] == tmp_path / "work" / r[0] for r in ran)
    for name in STUDY_ORDER[1:]:
        files = sorted(p.relative_to(source / name).as_posix() for p in (source / name).rglob("*") if p.is_file())
        assert files == ["plots/points.svg", "report.html", "report.md", "results.csv"]
    assert run.run_missing(source, tmp_path / "work", show_progress=False) == []  # all finished now
    written = write_answers([source], tmp_path / "answers", "en")  # studies with no trials yet still make a page
    assert "not tested yet" in written[0].read_text(encoding="utf-8")


def test_help_states_the_total_quick_time_from_the_study_files(monkeypatch, capsys):
    from masklab.study.answers.text import quick_minutes

    total = sum(load_spec(f"builtin:{name}", "quick").minutes for name in STUDY_ORDER)
    assert quick_minutes() == total
    code, out, _ = masklab(monkeypatch, capsys, "answers", "--help")
    assert code == 0 and f"{total:g} minutes" in re.sub(r"\s+", " ", out.replace("│", " "))


def test_a_summary_number_named_like_a_parameter_does_not_overwrite_the_point(tmp_path):
    # a finetune summary records its llrd (1.0 when unset) while q3's LLRD arm sets llrd as a parameter
    spec = load_spec("builtin:q3-transfer", "quick")
    path = tmp_path / "results.csv"
    path.write_text(
        "trial,state,phase,llrd,mode,task,unfreeze_every,seed,value,seconds,key,retry_of,error,llrd,test_accuracy\n"
        "0,complete,grid,,probe,builtin:rt-sentiment,,0,0.67,89.0,k0,,,1.0,0.67\n"
        "1,complete,grid,0.8,full,builtin:rt-sentiment,,0,0.77,115.0,k1,,,0.8,0.77\n",
        encoding="utf-8",
    )
    probe, llrd = read_rows(path, spec)
    assert probe.point.get("llrd") is None and probe.point["mode"] == "probe"
    assert llrd.point["llrd"] == 0.8 and llrd.point["mode"] == "full"
    assert probe.results["llrd"] == 1.0 and llrd.results["test_accuracy"] == 0.77


def test_a_study_that_makes_shared_runs_first_shows_its_stated_minutes_not_its_trials_alone(q1, tmp_path):
    # q6 pretrains four models before its sampling trials; their time is not in results.csv, so the trials'
    # sum alone would understate the study (4 of its 45 minutes)
    spec = load_spec("builtin:q6-generation", "quick")
    points = spec.grid_points()
    values = [{0: 100.0 + i, 1: 101.0 + i} for i in range(len(points))]
    source = tmp_path / "studies"
    write_study(source / "q6-generation", spec.name, points, values)
    source_q1, _ = q1
    write_answers([source, source_q1], tmp_path / "answers", "en")
    md = (tmp_path / "answers" / "answers.md").read_text(encoding="utf-8")
    rows = {line.split(" | ")[1]: line for line in md.splitlines() if line.startswith("| Q")}
    assert rows["q6-generation"].endswith(f"| ~{spec.minutes:g} (stated) |")
    assert rows["q1-init"].endswith(f"| {12 * 60 / 60:.1f} |")  # twelve trials of 60 s each, no shared runs
    trials = f"{2 * len(points) * 60 / 60:.1f} min: the sum of the {2 * len(points)} trials"
    assert trials in md and f"states {spec.minutes:g} min, which counts the 4 shared runs" in md
