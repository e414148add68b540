"""Studies: the spec, optuna as the queue (exactly once, re-queueing, resume), failures, and the report's numbers."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import yaml

from conftest import base_settings, masklab, worker_command, write_study
from masklab.study.storage import open_storage


def trials(directory: Path):
    from masklab.study import queue
    from masklab.study.results import rows
    from masklab.study.spec import load_spec

    spec = load_spec(str(directory / "study.yaml"))
    study, _ = queue.open_study(spec, open_storage(None, directory), study_dir=directory)
    return rows(study)


# -- the spec -----------------------------------------------------------------------------------------


def test_every_builtin_study_parses_at_both_scales_and_its_points_resolve(tmp_path):
    from masklab.study.spec import builtin_names, load_spec
    from masklab.study.trials import build_plan
    from masklab.study.worker import _search_corner

    assert {
        "q1-init",
        "q2-forgetting",
        "q3-transfer",
        "q4-masking-rate",
        "q4-masking-strategy",
        "q5-objectives",
        "q6-generation",
        "q7-recipe",
        "q7-search",
    } <= set(builtin_names())
    for name in builtin_names():
        quick = load_spec(f"builtin:{name}")
        assert quick.scale == "quick" and 0 < quick.minutes <= 45, name  # stated in the file, fits 2 cores
        assert quick.published is not None, name
        full = load_spec(f"builtin:{name}", "full")
        for spec in (quick, full):
            points = (
                [_search_corner(spec, "low"), _search_corner(spec, "high")] if spec.is_search else spec.grid_points()
            )
            keys = {build_plan(spec, p, spec.seeds[0], tmp_path / name).key for p in points}
            assert len(keys) == len(points), name  # every point is a distinct, valid config


def test_builtin_studies_train_what_their_published_answers_measured(tmp_path):
    """A preset's measured defaults (config.PRESET_TRAINING) may move; a shipped answer must still reproduce, so
    every pretraining trial and shared run of a ready-made study pins what those defaults would fill."""
    from masklab.config import load_config
    from masklab.study.spec import builtin_names, load_spec
    from masklab.study.trials import build_plan, overrides

    checked = 0
    for name in builtin_names():
        for scale in ("quick", "full"):
            spec = load_spec(f"builtin:{name}", scale)
            runs = [(need.base, {}, None) for need in spec.needs.values() if need.run == "pretrain"]
            if spec.run == "pretrain":
                points = [dict(spec.baseline)] if spec.is_search else spec.grid_points()  # a search sets the rest
                runs += [(spec.base, point, spec.seeds[0]) for point in points]
            for base, point, seed in runs:
                sets = overrides(base, point, "train.seed" if seed is not None else None, seed)
                config = build_plan(spec, point, seed, tmp_path).config if seed is not None else load_config(None, sets)
                assert config == load_config(None, sets, preset_training=False), (name, scale, point or base)
                checked += 1
    assert checked >= 70  # q4, q5, q6's shared models, q7: every masked LM they train at mini, both scales
    # ... and the equality is not trivial: a bare mini config does take the preset's values
    assert load_config(None, ["model.preset=mini"]) != load_config(None, ["model.preset=mini"], preset_training=False)


def test_grid_points_cross_the_grid_then_add_explicit_points_once(tmp_path, corpus_file):
    from masklab.study.spec import load_spec

    path = write_study(
        tmp_path / "s.yaml",
        corpus_file,
        grid={"masking.rate": [0.15, 0.3], "train.lr": [1e-3, 3e-3]},
        points=[{"masking.rate": 0.15, "train.lr": 1e-3}, {"masking.rate": 0.5, "train.lr": 1e-3}],
    )
    points = load_spec(str(path)).grid_points()
    assert len(points) == 5 and points[-1] == {"masking.rate": 0.5, "train.lr": 1e-3}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"grid": {"masking.rat": [0.2]}}, "unknown config key masking.rat"),
        ({"grid": {"masking.rate": []}}, "has no values"),
        ({"grid": None}, "the grid is empty"),
        ({"grid": None, "search": {"train.lr": {"low": 1e-2, "high": 1e-4}}, "trials": 3}, "low 0.01 > high 0.0001"),
        ({"grid": {"masking.rate": [1.5]}}, "masking.rate must be strictly between 0 and 1"),
        ({"metric": {"name": "x", "goal": "up"}}, "goal must be maximize or minimize"),
        ({"baseline": {"masking.rate": 0.9}}, "is not one of the study's points"),
        ({"colour": "red"}, "unknown study key 'colour'"),
        ({"base": {"train.lr": 3e-3}, "grid": {"model.init": ["${needs.m}"]}}, "needs: has no m"),
        (
            {"published": {"finding": "f", "citation": "c", "claim": [{"prefer": {"masking.rate": 0.3}}, "over"]}},
            "published.claim must be {prefer",
        ),
    ],
)
def test_bad_study_files_are_one_line_and_exit_2(tmp_path, corpus_file, monkeypatch, capsys, change, message):
    fields = {k: v for k, v in change.items() if v is not None}
    path = write_study(tmp_path / "s.yaml", corpus_file, **fields)
    if change.get("grid", 1) is None:
        raw = yaml.safe_load(path.read_text())
        raw.pop("grid")
        path.write_text(yaml.safe_dump(raw))
    code, _, err = masklab(monkeypatch, capsys, "study", path, "--out", tmp_path / "out", "--quiet")
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out" / "trials").exists()  # nothing ran


def test_a_storage_that_cannot_be_reached_is_one_line(tmp_path, corpus_file, monkeypatch, capsys):
    path = write_study(tmp_path / "s.yaml", corpus_file)
    for url in ("postgresql://user:hunter2-pw@127.0.0.1:9/none", f"sqlite:///{tmp_path}/no/such/dir/x.db"):
        code, _, err = masklab(monkeypatch, capsys, "study", path, "--storage", url, "--out", tmp_path / "o", "--quiet")
        assert code == 2 and err.count("\n") == 1 and "cannot reach the study storage" in err, err
        assert "hunter2-pw" not in err  # the password never reaches a message


# -- running: in process ------------------------------------------------------------------------------


def test_grid_runs_once_reruns_nothing_and_writes_the_report(tmp_path, corpus_file, monkeypatch, capsys):
    out = tmp_path / "study"
    out.mkdir()
    path = write_study(out / "study.yaml", corpus_file, baseline={"masking.rate": 0.15})
    code, stdout, err = masklab(monkeypatch, capsys, "study", path, "--out", out, "--quiet")
    assert code == 0, err
    assert "gave the best masked_accuracy" in stdout
    done = trials(out)
    assert sorted((r.point["masking.rate"], r.seed) for r in done) == [(0.15, 0), (0.15, 1), (0.3, 0), (0.3, 1)]
    assert all(r.state == "complete" for r in done) and len({r.key for r in done}) == 4
    for r in done:
        record = json.loads((out / "trials" / r.key / "trial.json").read_text())
        assert record["status"] == "complete" and record["summary"]["masked_accuracy"] == pytest.approx(r.value)
    with (out / "results.csv").open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4 and {"masking.rate", "seed", "state", "value", "masked_accuracy", "train_tokens"} <= set(
        table[0]
    )
    stamps = {r.key: (out / "trials" / r.key / "summary.json").stat().st_mtime_ns for r in done}
    # A re-run finds every trial finished: nothing trains again, the report is rewritten.
    code, _, err = masklab(monkeypatch, capsys, "study", path, "--out", out, "--quiet")
    assert code == 0, err
    assert len(trials(out)) == 4
    assert stamps == {r.key: (out / "trials" / r.key / "summary.json").stat().st_mtime_ns for r in done}
    code, stdout, _ = masklab(monkeypatch, capsys, "study", path, "--out", out, "--status")
    assert code == 0 and "4 complete" in stdout
    # Same name, another definition, same storage: refused, nothing lost.
    write_study(out / "other.yaml", corpus_file, grid={"masking.rate": [0.15, 0.4]})
    code, _, err = masklab(monkeypatch, capsys, "study", out / "other.yaml", "--out", out, "--quiet")
    assert code == 2 and "different definition (grid differ)" in err, err
    assert len(trials(out)) == 4
    # A definition stored by an older masklab, holding a field that is now a report setting: it still resumes.
    study = optuna.load_study(study_name=yaml.safe_load(path.read_text())["name"], storage=open_storage(None, out))
    study.set_user_attr("definition", {**study.user_attrs["definition"], "factor": ["masking.rate"]})
    study.set_user_attr("definition_hash", "from-an-older-masklab")
    code, _, err = masklab(monkeypatch, capsys, "study", path, "--out", out, "--quiet")
    assert code == 0 and len(trials(out)) == 4, err
    # The file now pins a value its trials already resolved to (as the ready-made studies pin mini's earlier recipe
    # where a preset's default moved): the same trials, so it resumes and trains nothing again ...
    base = yaml.safe_load(path.read_text())["base"]
    write_study(out / "pinned.yaml", corpus_file, base={**base, "train.weight_decay": 0.01})
    code, _, err = masklab(monkeypatch, capsys, "study", out / "pinned.yaml", "--out", out, "--quiet")
    assert code == 0 and len(trials(out)) == 4, err
    assert stamps == {r.key: (out / "trials" / r.key / "summary.json").stat().st_mtime_ns for r in done}
    # ... and a pin that changes what the trials run is another study
    write_study(out / "moved.yaml", corpus_file, base={**base, "train.weight_decay": 0.02})
    code, _, err = masklab(monkeypatch, capsys, "study", out / "moved.yaml", "--out", out, "--quiet")
    assert code == 2 and "different definition (base differ)" in err, err


def test_a_failing_trial_is_recorded_and_the_study_completes(tmp_path, corpus_file):
    from masklab.study.spec import load_spec
    from masklab.study.worker import work

    out = tmp_path / "study"
    out.mkdir()
    path = write_study(
        out / "study.yaml",
        corpus_file,
        grid={"data.corpus": [str(corpus_file), str(tmp_path / "missing.txt")]},
        seeds=[0],
    )
    work(load_spec(str(path)), out)
    by_corpus = {r.point["data.corpus"]: r for r in trials(out)}
    assert by_corpus[str(corpus_file)].state == "complete"
    failed = by_corpus[str(tmp_path / "missing.txt")]
    assert failed.state == "failed" and "missing.txt" in failed.error
    assert "missing.txt" in (out / "report.md").read_text() and "## Failed trials" in (out / "report.md").read_text()
    # Fixed (the corpus now exists): --retry-failed queues it again, and it completes.
    (tmp_path / "missing.txt").write_text(corpus_file.read_text())
    from masklab.study import queue

    spec = load_spec(str(path))
    assert queue.retry_failed(queue.open_study(spec, open_storage(None, out))[0]) == 1
    work(spec, out)
    assert sorted(r.state for r in trials(out)) == ["complete", "complete", "retried"]


def test_a_metric_no_trial_produces_stops_the_study_and_keeps_the_trial(tmp_path, corpus_file, monkeypatch, capsys):
    out = tmp_path / "study"
    out.mkdir()
    path = write_study(
        out / "study.yaml", corpus_file, metric={"name": "no_such_metric"}, seeds=[0], grid={"masking.rate": [0.2]}
    )
    code, _, err = masklab(monkeypatch, capsys, "study", path, "--out", out, "--quiet")
    assert code == 2 and "no metric 'no_such_metric'" in err, err
    assert "masked_accuracy" in err  # the keys it could have been
    kept = [d for d in (out / "trials").iterdir() if (d / "trial.json").exists()]
    assert len(kept) == 1 and json.loads((kept[0] / "trial.json").read_text())["status"] == "complete"
    # Fixed metric name: the kept trial is read back, not trained again.
    stamp = (kept[0] / "summary.json").stat().st_mtime_ns
    write_study(out / "study.yaml", corpus_file, seeds=[0], grid={"masking.rate": [0.2]})
    code, _, err = masklab(monkeypatch, capsys, "study", path, "--out", out, "--quiet")
    assert code == 0, err
    assert (kept[0] / "summary.json").stat().st_mtime_ns == stamp
    # The stopped run's trial is re-queued once and its copy completes by reading the kept result back. (The
    # command runs two workers on two cores: one that started late used to pop the copy before the stop and miss
    # the metric again, leaving retried, retried, complete.)
    assert [r.state for r in trials(out)] == ["retried", "complete"]


def test_a_worker_that_joins_a_study_stopped_for_a_missing_metric_stops_too(tmp_path, corpus_file):
    from masklab.study.spec import load_spec
    from masklab.study.worker import MetricMissing, run_study, work

    out = tmp_path / "study"
    out.mkdir()
    path = write_study(
        out / "study.yaml", corpus_file, metric={"name": "no_such_metric"}, seeds=[0], grid={"masking.rate": [0.2]}
    )
    spec = load_spec(str(path))
    with pytest.raises(MetricMissing):
        work(spec, out, show_progress=False)
    # a second worker (started late beside the first, or joining from another machine) reads the stop and
    # leaves the copy waiting, rather than reading the kept run back and missing the metric again
    with pytest.raises(MetricMissing, match="no_such_metric"):
        work(spec, out, show_progress=False)
    assert [r.state for r in trials(out)] == ["retried", "waiting"]
    # a new command is a new attempt (masklab may have been fixed meanwhile): it clears the stop and runs the copy,
    # which stops the study again, with the same single copy left for the next attempt
    with pytest.raises(MetricMissing):
        run_study(spec, str(path), out, jobs=1, show_progress=False)
    assert [r.state for r in trials(out)] == ["retried", "retried", "waiting"]


def test_more_seeds_grow_a_finished_study_and_run_only_the_new_seeds(tmp_path, corpus_file, monkeypatch, capsys):
    out = tmp_path / "study"
    out.mkdir()
    path = write_study(out / "study.yaml", corpus_file)
    code, _, err = masklab(monkeypatch, capsys, "study", path, "--out", out, "--quiet")
    assert code == 0, err
    first = {r.key: (r.value, (out / "trials" / r.key / "summary.json").stat().st_mtime_ns) for r in trials(out)}
    assert len(first) == 4
    code, stdout, err = masklab(monkeypatch, capsys, "study", path, "--out", out, "--quiet", "--seeds", "0-2")
    assert code == 0, err
    done = trials(out)
    assert sorted((r.point["masking.rate"], r.seed) for r in done) == [
        (0.15, 0), (0.15, 1), (0.15, 2), (0.3, 0), (0.3, 1), (0.3, 2)
    ]  # fmt: skip
    assert all(r.state == "complete" for r in done)
    # the four finished trials were read, not trained again
    assert {
        k: (r.value, (out / "trials" / k / "summary.json").stat().st_mtime_ns) for r in done if (k := r.key) in first
    } == first
    assert "seeds [0, 1, 2]" in (out / "report.md").read_text()
    # The study file's own command (seeds 0, 1) now resumes the grown study whole: nothing runs, nothing is lost.
    code, stdout, err = masklab(monkeypatch, capsys, "study", path, "--out", out, "--status")
    assert code == 0 and "6 complete" in stdout, err
    code, _, err = masklab(monkeypatch, capsys, "study", path, "--out", out, "--quiet")
    assert code == 0 and len(trials(out)) == 6 and "seeds [0, 1, 2]" in (out / "report.md").read_text(), err
    # Anything but seeds still refuses; a bad --seeds is one line.
    code, _, err = masklab(monkeypatch, capsys, "study", path, "--out", out, "--seeds", "two")
    assert code == 2 and err.count("\n") == 1 and "--seeds must be" in err and "Traceback" not in err


# a search space of one log-scaled and one categorical key
LR_AND_RATE = {"train.lr": {"low": 1e-4, "high": 1e-2, "log": True}, "masking.rate": [0.15, 0.3]}


def test_a_search_grows_its_confirmation_seeds_for_the_points_it_confirmed_and_its_baseline(tmp_path, corpus_file):
    from masklab.study.spec import load_spec
    from masklab.study.worker import work

    out = tmp_path / "study"
    path = _search_study(
        out,
        corpus_file,
        search=LR_AND_RATE,
        trials=3,
        seeds=[0],
        baseline={"train.lr": 1e-3, "masking.rate": 0.15},
        confirm={"top": 1, "seeds": [1]},
    )
    work(load_spec(str(path)), out)
    before = trials(out)
    best = [r.point for r in before if r.phase == "confirm"]
    assert len(best) == 1 and sum(r.phase == "search" for r in before) == 3
    work(load_spec(str(path), seeds="1-2"), out)
    done = trials(out)
    assert sum(r.phase == "search" for r in done) == 3  # nothing is searched again
    assert sorted(r.seed for r in done if r.phase == "confirm" and r.point == best[0]) == [1, 2]
    assert sorted(r.seed for r in done if r.phase == "baseline") == [0, 1, 2]
    assert all(r.state == "complete" for r in done)
    # A worker still holding the old seeds confirmed after another process grew the study (stored: seeds 1-3,
    # queued; the confirmed point has 1-2): resuming with the study file's own seeds adds the seed it lacks.
    study = optuna.load_study(study_name="s", storage=open_storage(None, out))
    study.set_user_attr("definition", {**study.user_attrs["definition"], "confirm_seeds": [1, 2, 3]})
    study.set_user_attr("queued_seeds", {"seeds": [0], "confirm_seeds": [1, 2, 3]})
    work(load_spec(str(path)), out)
    assert sorted(r.seed for r in trials(out) if r.phase == "confirm" and r.point == best[0]) == [1, 2, 3]


def test_an_inconclusive_claim_names_the_seeds_that_would_settle_it(tmp_path, corpus_file):
    from masklab.study.finding import settle_command
    from masklab.study.results import by_point, rows
    from masklab.study.spec import load_spec, parse_seeds, seeds_text
    from masklab.study.stats import t_quantile

    claim = {"prefer": {"masking.rate": 0.4}, "over": {"masking.rate": 0.15}, "relation": "better"}
    path = write_study(
        tmp_path / "s.yaml",
        corpus_file,
        grid={"masking.rate": [0.15, 0.4]},
        seeds=[0, 1, 2],
        published={"finding": "40% beats 15%", "citation": "Someone 2023", "claim": claim},
    )
    spec = load_spec(str(path))
    # paired differences 0.02, -0.01, 0.05: mean 0.02, sd 0.03
    groups = by_point(spec, rows(fabricated_study({0.15: [0.30, 0.32, 0.34], 0.4: [0.32, 0.31, 0.39]})))
    # the reports' interval: Student t below 10 seeds, the normal quantile from 10 on
    n = next(n for n in range(2, 100) if (t_quantile(n - 1) if n < 10 else 1.959964) * 0.03 / math.sqrt(n) < 0.02)
    assert n == 10  # 9 seeds: t(0.975, 8) * 0.03 / 3 = 0.0231, wider than the gap; 10: 1.96 * 0.03 / sqrt(10) = 0.0186
    assert settle_command(spec, groups, ["masking.rate"]) == f"masklab study {path} --seeds 0-{n - 1}"
    # beyond noise: nothing to settle
    clear = by_point(spec, rows(fabricated_study({0.15: [0.30, 0.32, 0.34], 0.4: [0.35, 0.36, 0.40]})))
    assert settle_command(spec, clear, ["masking.rate"]) is None
    assert parse_seeds("0-2,7") == [0, 1, 2, 7] and parse_seeds("3,1") == [3, 1] and seeds_text([0, 1, 2, 3]) == "0-3"


def _search_study(directory: Path, corpus_file, **fields) -> Path:
    directory.mkdir()
    path = write_study(directory / "study.yaml", corpus_file, **fields)
    raw = yaml.safe_load(path.read_text())
    raw.pop("grid")
    path.write_text(yaml.safe_dump(raw))
    return path


def test_search_samples_the_budget_then_confirms_the_best_with_more_seeds(tmp_path, corpus_file):
    from masklab.study.spec import load_spec
    from masklab.study.worker import work

    out = tmp_path / "study"
    path = _search_study(
        out,
        corpus_file,
        search=LR_AND_RATE,
        trials=4,
        seeds=[0],
        confirm={"top": 2, "seeds": [1]},
    )
    work(load_spec(str(path)), out)
    done = trials(out)
    search = [r for r in done if r.phase == "search"]
    confirm = [r for r in done if r.phase == "confirm"]
    assert len(search) == 4 and all(
        1e-4 <= r.point["train.lr"] <= 1e-2 and r.point["masking.rate"] in (0.15, 0.3) for r in search
    )
    assert len(confirm) == 2 and all(r.seed == 1 for r in confirm)
    best = sorted(search, key=lambda r: -r.value)[:2]
    assert sorted(json.dumps(r.point, sort_keys=True) for r in confirm) == sorted(
        json.dumps(r.point, sort_keys=True) for r in best
    )
    page = (out / "report.html").read_text()
    assert "search progress" in page


def test_two_workers_drawing_side_by_side_draw_different_configurations(tmp_path, corpus_file):
    from masklab.study import queue, worker
    from masklab.study.spec import load_spec

    space = {"train.lr": {"low": 1e-4, "high": 1e-2, "log": True}, "masking.rate": {"low": 0.1, "high": 0.5}}

    def draws(directory: Path, workers: int) -> list[dict]:
        spec = load_spec(str(_search_study(directory, corpus_file, search=space, trials=4, seeds=[0])))
        # each worker process opens the study with its own storage object and its own sampler
        studies = [queue.open_study(spec, open_storage(None, directory))[0] for _ in range(workers)]
        out = []
        for i in range(2):
            study = studies[i % workers]
            out.append(worker._point_of(worker._next_trial(study, study._storage, spec), spec)[0])
        return out

    side_by_side = draws(tmp_path / "two", workers=2)
    assert side_by_side[0] != side_by_side[1]
    assert draws(tmp_path / "one", workers=1) == side_by_side  # seeded by trial number: the same history, same draws


def test_two_trials_of_one_configuration_train_it_once(tmp_path, corpus_file, monkeypatch):
    import threading

    from masklab.study import trials as trial_module
    from masklab.study.spec import load_spec

    out = tmp_path / "study"
    out.mkdir()
    spec = load_spec(str(write_study(out / "study.yaml", corpus_file, seeds=[0], grid={"masking.rate": [0.2]})))
    plan = trial_module.build_plan(spec, {"masking.rate": 0.2}, 0, out)
    trained, real_kind = [], trial_module.kind

    class Counted:  # the real trial kind, counting its runs
        def __init__(self, name):
            self.inner = real_kind(name)

        def run(self, *args):
            trained.append(threading.get_ident())
            return self.inner.run(*args)

    monkeypatch.setattr(trial_module, "kind", Counted)
    summaries = []
    both = [
        threading.Thread(target=lambda: summaries.append(trial_module.run_trial(spec, plan, out))) for _ in range(2)
    ]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join(timeout=300)
    assert len(trained) == 1 and len(summaries) == 2 and summaries[0] == summaries[1]


def test_a_search_judges_its_best_against_the_baseline_on_the_confirmation_seeds_only(tmp_path, corpus_file):
    import statistics

    from masklab.study import queue
    from masklab.study.answers.gather import read_rows
    from masklab.study.answers.measure import measure_rows
    from masklab.study.finding import verdict
    from masklab.study.results import by_point, rows
    from masklab.study.spec import load_spec
    from masklab.study.worker import work

    baseline = {"train.lr": 1e-3, "masking.rate": 0.15}
    path = _search_study(
        tmp_path / "study",
        corpus_file,
        search={"train.lr": {"low": 1e-4, "high": 1e-2, "log": True}, "masking.rate": {"low": 0.1, "high": 0.5}},
        trials=2,
        seeds=[0],
        confirm={"top": 1, "seeds": [1, 2]},
        baseline=baseline,
        published={"finding": "f", "citation": "c", "claim": {"prefer": "best", "over": "baseline"}},
    )
    spec = load_spec(str(path))
    work(spec, tmp_path / "study", show_progress=False)
    done = [r for r in trials(tmp_path / "study") if r.state == "complete"]
    by_phase = {phase: sorted(r.seed for r in done if r.phase == phase) for phase in ("search", "baseline", "confirm")}
    assert by_phase == {"search": [0, 0], "baseline": [0, 1, 2], "confirm": [1, 2]}
    assert all(r.point == baseline for r in done if r.phase == "baseline")
    # the best is the searched configuration that was confirmed; the baseline's seed 0 and the best's (the seed
    # that chose it) stay out of the comparison
    best = next(r.point for r in done if r.phase == "confirm")
    mine = {r.seed: r.value for r in done if r.point == best and r.seed in (1, 2)}
    base = {r.seed: r.value for r in done if r.phase == "baseline" and r.seed in (1, 2)}
    diffs = [mine[s] - base[s] for s in (1, 2)]
    answer = measure_rows(spec, read_rows(tmp_path / "study" / "results.csv", spec), tmp_path / "study")
    p = answer.verdict.pooled
    assert p.n == 2 and math.isclose(p.diff.mean, statistics.fmean(diffs), rel_tol=1e-9)
    assert math.isclose(p.diff.sd, statistics.stdev(diffs), rel_tol=1e-9, abs_tol=1e-12)
    assert sorted(answer.verdict.over.split(", ")) == ["masking.rate=0.15", "train.lr=0.001"]
    assert "train.lr=" in answer.verdict.prefer and answer.verdict.prefer != answer.verdict.over
    study, _ = queue.open_study(spec, open_storage(None, tmp_path / "study"))
    assert f"{statistics.fmean(diffs):.4g}" in verdict(spec, by_point(spec, rows(study)))  # the report says the same


def test_a_search_baseline_outside_the_space_or_a_best_claim_without_one_is_one_line(tmp_path, corpus_file):
    from masklab.errors import UserError
    from masklab.study.spec import load_spec

    space = {"train.lr": {"low": 1e-4, "high": 1e-2, "log": True}, "masking.rate": [0.15, 0.3]}
    claim = {"finding": "f", "citation": "c", "claim": {"prefer": "best", "over": "baseline"}}
    cases = {
        "outside": (dict(baseline={"train.lr": 0.1, "masking.rate": 0.15}), "outside the search space of train.lr"),
        "partial": (dict(baseline={"train.lr": 1e-3}), "must set exactly the searched keys"),
        "no baseline": (dict(published=claim), "prefer: best needs a search with a baseline"),
    }
    for name, (fields, message) in cases.items():
        path = _search_study(
            tmp_path / name, corpus_file, search=space, trials=2, confirm={"top": 1, "seeds": [1]}, **fields
        )
        with pytest.raises(UserError, match=message):
            load_spec(str(path))


def test_a_worker_with_nothing_left_to_draw_waits_to_confirm_instead_of_leaving(tmp_path, corpus_file, monkeypatch):
    import threading

    from masklab.study import queue, worker
    from masklab.study.spec import load_spec

    out = tmp_path / "study"
    path = _search_study(
        out,
        corpus_file,
        search={"train.lr": {"low": 1e-4, "high": 1e-2, "log": True}},
        trials=2,
        seeds=[0],
        confirm={"top": 1, "seeds": [1]},
    )
    spec = load_spec(str(path))
    assert worker.work(spec, out, show_progress=False, max_trials=1).finished == 1
    # the search's last trial is drawn and running on another worker (here: claimed by this process, beating)
    storage = open_storage(None, out)
    study, _ = queue.open_study(spec, storage)
    other = study.ask()
    queue.claim(storage, other._trial_id)
    monkeypatch.setattr(worker, "CONFIRM_POLL_SECONDS", 0.05)
    polls = []
    real = worker._enqueue_confirm
    monkeypatch.setattr(worker, "_enqueue_confirm", lambda *a: polls.append(1) or real(*a))
    result = {}
    waiter = threading.Thread(target=lambda: result.update(done=worker.work(spec, out, show_progress=False)))
    waiter.start()
    deadline = time.monotonic() + 120
    while len(polls) < 3 and waiter.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert waiter.is_alive() and len(polls) >= 3  # polled while the other trial ran, rather than leaving
    study.tell(other, 0.0)  # the other worker's trial finishes (last: the best is the first trial)
    waiter.join(timeout=300)
    assert not waiter.is_alive() and result["done"].finished == 1
    confirm = [r for r in trials(out) if r.phase == "confirm"]
    assert len(confirm) == 1 and confirm[0].seed == 1 and confirm[0].state == "complete"


def test_the_median_pruner_stops_trials_from_their_validation_metric(tmp_path, corpus_file):
    from masklab.study.spec import load_spec
    from masklab.study.worker import work

    out = tmp_path / "study"
    out.mkdir()
    base = base_settings(corpus_file, train__max_steps=40)
    path = write_study(
        out / "study.yaml",
        corpus_file,
        base=base,
        pruner="median",
        seeds=[0],
        grid={"train.lr": [3e-3, 3e-3 * 0.9, 3e-3 * 0.8, 1e-6, 2e-6]},
    )
    work(load_spec(str(path)), out)
    done = {r.point["train.lr"]: r for r in trials(out)}
    assert all(done[lr].state == "complete" for lr in (3e-3, 3e-3 * 0.9, 3e-3 * 0.8))  # the first three set the median
    assert done[1e-6].state == "pruned" and "pruned at step" in done[1e-6].error  # learns nothing: stopped early
    record = json.loads((out / "trials" / done[1e-6].key / "trial.json").read_text())
    assert record["status"] == "pruned"


# -- running: processes -------------------------------------------------------------------------------


def _worker(path: Path, out: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        worker_command(path, out),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_concurrent_workers_run_every_grid_trial_exactly_once(tmp_path, corpus_file):
    out = tmp_path / "study"
    out.mkdir()
    path = write_study(out / "study.yaml", corpus_file, grid={"masking.rate": [0.15, 0.2, 0.3]}, seeds=[0, 1])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [_worker(path, out, env) for _ in range(2)]  # both race to create the study and enqueue the grid
    logs = [w.communicate(timeout=300)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), logs
    done = trials(out)
    pairs = [(r.point["masking.rate"], r.seed) for r in done]
    assert len(pairs) == 6 and len(set(pairs)) == 6, pairs
    assert all(r.state == "complete" for r in done)
    ran = [int(re.search(r"finished (\d+) trial", log).group(1)) for log in logs]
    assert sum(ran) == 6


def test_an_unclaimed_trial_is_timed_per_study_not_per_trial_id():
    """Trial ids restart at 0 in every study and one process can run several (masklab answers --run): a
    trial just popped in a second study must not inherit the first study's old sighting of its id."""
    import datetime
    from types import SimpleNamespace

    from masklab.study import queue

    popped = datetime.datetime(2026, 1, 1, 12, 0, 0)
    first = SimpleNamespace(_trial_id=0, datetime_start=popped, system_attrs={})
    assert not queue.is_stale(first, now=1000.0)  # first sighting: the clock starts
    assert not queue.is_stale(first, now=1000.0 + queue.GRACE_SECONDS - 1)
    assert queue.is_stale(first, now=1000.0 + queue.GRACE_SECONDS + 1)  # never claimed: its worker died
    second = SimpleNamespace(_trial_id=0, datetime_start=popped + datetime.timedelta(minutes=5), system_attrs={})
    assert not queue.is_stale(second, now=1000.0 + queue.GRACE_SECONDS + 1)  # same id, another study: a new clock


def test_a_killed_workers_trial_is_queued_again_and_resumes(tmp_path, corpus_file):
    from masklab.study.spec import load_spec
    from masklab.study.worker import work

    out = tmp_path / "study"
    out.mkdir()
    base = base_settings(corpus_file, train__max_steps=2000, train__save_every=20, train__eval_every=0)
    path = write_study(out / "study.yaml", corpus_file, base=base, grid={"masking.rate": [0.2]}, seeds=[0])
    worker = _worker(path, out, {**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 240
    checkpoint = None
    while time.time() < deadline and checkpoint is None:
        found = list((out / "trials").glob("*/checkpoint/trainer_state.pt")) if (out / "trials").exists() else []
        checkpoint = found[0] if found else None
        time.sleep(0.5)
    assert checkpoint is not None, "the trial never checkpointed"
    time.sleep(1.0)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    trial_dir = checkpoint.parent.parent
    assert not (trial_dir / "summary.json").exists()
    from masklab.models.checkpoint import find_checkpoint, load_trainer_state

    killed_at = load_trainer_state(find_checkpoint(trial_dir))["step"]
    assert 0 < killed_at < 2000
    work(load_spec(str(path)), out)  # this host sees the dead pid: no grace period to wait out
    done = trials(out)
    assert [r.state for r in done] == ["retried", "complete"] and done[1].retry_of == done[0].number
    assert done[0].key == done[1].key  # same directory: the retry resumed the killed trial's checkpoint
    summary = json.loads((trial_dir / "summary.json").read_text())
    assert summary["steps"] == 2000
    steps = [
        json.loads(line)["step"] for line in (trial_dir / "metrics.jsonl").read_text().splitlines() if '"loss"' in line
    ]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # one log, continued, not restarted


# -- the report ---------------------------------------------------------------------------------------


def fabricated_study(values: dict[float, list[float]], goal: str = "maximize"):
    """An in-memory optuna study holding finished trials with these metric values per point and seed."""
    import optuna

    study = optuna.create_study(direction=goal)
    for rate, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            point = {"masking.rate": rate}
            study.add_trial(
                optuna.trial.create_trial(
                    state=optuna.trial.TrialState.COMPLETE,
                    value=value,
                    params={"masking.rate": rate},
                    distributions={"masking.rate": optuna.distributions.CategoricalDistribution(list(values))},
                    user_attrs={
                        "point": json.dumps(point, sort_keys=True, separators=(",", ":")),
                        "seed": seed,
                        "phase": "grid",
                        "key": f"k{rate}-{seed}",
                        "results": {"masked_accuracy": value, "other": 2 * value},
                    },
                )
            )
    return study


def test_report_numbers_equal_a_hand_computation(tmp_path, corpus_file):
    from masklab.study.finding import finding, verdict
    from masklab.study.report import point_table, write_study_report
    from masklab.study.results import by_point, rows
    from masklab.study.spec import load_spec

    values = {0.15: [0.30, 0.32, 0.34], 0.4: [0.35, 0.36, 0.40]}
    path = write_study(
        tmp_path / "s.yaml",
        corpus_file,
        grid={"masking.rate": [0.15, 0.4]},
        seeds=[0, 1, 2],
        baseline={"masking.rate": 0.15},
        metrics=["other"],
        published={
            "finding": "40% beats 15%",
            "citation": "Someone 2023",
            "claim": {"prefer": {"masking.rate": 0.4}, "over": {"masking.rate": 0.15}, "relation": "better"},
        },
    )
    spec = load_spec(str(path))
    study = fabricated_study(values)
    groups = by_point(spec, rows(study))
    t2 = 4.302652729911275  # Student t, 0.975 quantile, 2 degrees of freedom
    # 0.4: mean 0.37, sd sqrt(((-.02)^2 + (-.01)^2 + .03^2) / 2) = sqrt(0.0007)
    s = groups[1].spread()
    assert s.mean == pytest.approx(0.37) and s.sd == pytest.approx(math.sqrt(0.0007))
    assert (s.low, s.high) == pytest.approx((0.37 - t2 * math.sqrt(0.0007 / 3), 0.37 + t2 * math.sqrt(0.0007 / 3)))
    # paired differences 0.05, 0.04, 0.06: mean 0.05, sd 0.01, wins 3/3, CI excludes 0
    columns, table = point_table(spec, groups, ["masking.rate"])
    row = dict(zip(columns, table[1]))
    assert row["masked_accuracy mean ± sd"] == f"0.37 ± {math.sqrt(0.0007):.4g}"
    assert row["other mean ± sd"] == f"0.74 ± {2 * math.sqrt(0.0007):.4g}"
    assert row["vs baseline (masking.rate=0.15)"] == "0.05" and row["wins"] == "3/3"
    lo, hi = 0.05 - t2 * 0.01 / math.sqrt(3), 0.05 + t2 * 0.01 / math.sqrt(3)
    assert row["its 95% CI"] == f"{lo:.4g} to {hi:.4g}"
    words = " ".join(finding(spec, groups, ["masking.rate"]))
    assert (
        "masking.rate=0.4 gave the best masked_accuracy" in words
        and "beyond seed noise" in words
        and "wins 3/3" in words
    )
    assert verdict(spec, groups).startswith("This run agrees")
    # Reverse the claim's data: the same gap now contradicts it.
    flipped = by_point(spec, rows(fabricated_study({0.15: values[0.4], 0.4: values[0.15]})))
    assert verdict(spec, flipped).startswith("This run disagrees")
    # Within noise: an "at least as good" claim is not contradicted, a "better" claim is inconclusive.
    noisy = by_point(spec, rows(fabricated_study({0.15: [0.30, 0.40, 0.35], 0.4: [0.36, 0.31, 0.37]})))
    assert "inconclusive" in verdict(spec, noisy)
    headline = write_study_report(spec, tmp_path, study)
    assert headline["counts"] == {"complete": 6}
    md = (tmp_path / "report.md").read_text()
    assert "40% beats 15% (Someone 2023)" in md and "This run agrees" in md and f"{lo:.4g} to {hi:.4g}" in md
    assert len(list(csv.DictReader((tmp_path / "results.csv").open()))) == 6


def test_the_html_report_is_self_contained(tmp_path, corpus_file):
    from masklab.study.report import write_study_report
    from masklab.study.spec import load_spec

    path = write_study(tmp_path / "s.yaml", corpus_file, grid={"masking.rate": [0.15, 0.4]}, seeds=[0, 1, 2])
    write_study_report(
        load_spec(str(path)), tmp_path, fabricated_study({0.15: [0.3, 0.32, 0.34], 0.4: [0.35, 0.36, 0.4]})
    )
    page = (tmp_path / "report.html").read_text()
    assert "<svg" in page  # the plots are inline
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//|@import|<link|<script", page, re.I)
    assert "http://" not in page and "https://" not in page  # not even a namespace URI
    plots = {p.name: p.read_bytes() for p in (tmp_path / "plots").glob("*.svg")}
    write_study_report(  # written again: the same bytes, page and plots (no random element ids)
        load_spec(str(path)), tmp_path, fabricated_study({0.15: [0.3, 0.32, 0.34], 0.4: [0.35, 0.36, 0.4]})
    )
    assert plots and {p.name: p.read_bytes() for p in (tmp_path / "plots").glob("*.svg")} == plots
    assert (tmp_path / "report.html").read_text() == page


def test_a_database_storage_holds_the_study_like_the_journal(tmp_path, corpus_file):
    """Any optuna storage URL (here SQLite; PostgreSQL is the same code path) carries the whole study."""
    from masklab.study import queue
    from masklab.study.results import rows
    from masklab.study.spec import load_spec
    from masklab.study.worker import work

    out = tmp_path / "study"
    out.mkdir()
    spec = load_spec(str(write_study(out / "study.yaml", corpus_file, seeds=[0])))
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    work(spec, out, url)
    assert not (out / "journal.log").exists()
    study, created = queue.open_study(spec, open_storage(url, out))
    assert not created and sorted(r.point["masking.rate"] for r in rows(study) if r.state == "complete") == [0.15, 0.3]


def test_generation_trials_sample_a_need_made_once(tmp_path, corpus_file):
    """A generate study: its model is a need (one tiny pretraining run in needs/), every trial samples it."""
    from masklab.study.spec import load_spec
    from masklab.study.trials import need_dir
    from masklab.study.worker import run_study

    out = tmp_path / "study"
    out.mkdir()
    study = {
        "name": "g",
        "run": "generate",
        "seeds": [0, 1],
        "needs": {"mlm": {"run": "pretrain", "base": base_settings(corpus_file)}},
        "base": {"checkpoint": "${needs.mlm}", "n": 4, "length": 8},
        "grid": {"strategy": ["maskgit", "mask-predict"], "steps": [2]},
        "metric": {"name": "distinct_2", "goal": "maximize"},
    }
    (out / "study.yaml").write_text(yaml.safe_dump(study))
    spec = load_spec(str(out / "study.yaml"))
    run_study(spec, str(out / "study.yaml"), out, show_progress=False)
    made = need_dir(out, spec, "mlm")
    assert (made / "summary.json").exists() and len(list((out / "needs").glob("mlm-*"))) == 1
    done = trials(out)
    assert len(done) == 4 and all(r.state == "complete" for r in done)
    assert all(0 < r.value <= 1 and r.results["generated_tokens"] == 4 * 8 for r in done)
    samples = json.loads((out / "trials" / done[0].key / "samples.json").read_text())
    assert len(samples) == 4 and all(s["text"] for s in samples)
