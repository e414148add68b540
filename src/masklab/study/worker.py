"""Workers: processes that take trials from the study's queue until it is empty.

`run_study` makes the needs, warms the shared caches, then runs `jobs` workers: itself when jobs is 1,
else that many `masklab study --worker` processes. Every trial runs with the same thread count
(TRIAL_THREADS) whatever --jobs is, so its numbers are the same bits under any --jobs; by default as
many workers start as the cores hold at that count (with GPUs, one per GPU). A worker rewrites the report
after a finished trial (at most once per REPORT_SECONDS) and when it stops; the launcher writes the final one.
`--worker --storage URL` on another machine joins the study.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from masklab.data.pipeline import prepare_data
from masklab.errors import UserError
from masklab.study import queue
from masklab.study.kinds import kind
from masklab.study.report import write_study_report
from masklab.study.spec import StudySpec, canonical, seeds_text
from masklab.study.storage import STORAGE_ENV, StorageLost, open_storage
from masklab.study.trials import (
    build_plan,
    ensure_needs,
    error_line,
    flatten,
    lookup,
    run_trial,
    stored_curves,
    write_record,
)


class MetricMissing(UserError):
    """The study's metric is not in a finished trial's summary: every trial would miss it, so stop (exit 2)."""


@dataclass
class WorkResult:
    finished: int = 0
    trial_seconds: list[float] = field(default_factory=list)  # inside the run itself (training, evaluation)
    engine_seconds: list[float] = field(default_factory=list)  # per trial around it: queue, hashing, storage, report


def _point_of(trial, spec: StudySpec) -> tuple[dict, int, str]:
    """(point, seed, phase) of a popped or freshly sampled trial; a sampled one draws its point now."""
    attrs = trial.user_attrs
    if "point" in attrs:
        point = json.loads(attrs["point"])
        choices = grid_choices(spec)
        for key in point:  # register the fixed values as optuna parameters (dashboard, importances)
            if spec.is_search and key in spec.search:
                _suggest(trial, key, spec.search[key])
            else:
                trial.suggest_categorical(key, choices[key])
        return point, attrs["seed"], attrs["phase"]
    point = queue.decode_params({key: _suggest(trial, key, param) for key, param in spec.search.items()})
    trial.set_user_attr("point", canonical(point))
    trial.set_user_attr("seed", spec.seeds[0])
    trial.set_user_attr("phase", "search")
    for seed in spec.seeds[1:]:  # the seeds axis is crossed with every point, never searched
        queue.enqueue(trial.study, point, seed, "search")
    return point, spec.seeds[0], "search"


def grid_choices(spec: StudySpec) -> dict[str, list]:
    """Every value each grid key takes: one categorical distribution per key for the whole study (optuna
    refuses a parameter whose choices change between trials)."""
    out: dict[str, list] = {}
    for point in spec.grid_points():
        for key, value in point.items():
            encoded = queue.encode(value)
            if encoded not in out.setdefault(key, []):
                out[key].append(encoded)
    return out


def _suggest(trial, key: str, param):
    if param.type == "categorical":
        return trial.suggest_categorical(key, [queue.encode(c) for c in param.choices])
    if param.type == "int":
        return trial.suggest_int(key, int(param.low), int(param.high), step=int(param.step or 1), log=param.log)
    return trial.suggest_float(
        key,
        float(param.low),
        float(param.high),
        log=param.log,
        step=None if param.log or param.step is None else float(param.step),
    )


def _prune_key(metric: str) -> str:
    """The validation log's name for a summary metric (test_accuracy -> accuracy, evaluation.x -> x)."""
    last = metric.split(".")[-1]
    return last.removeprefix("test_").removeprefix("val_")


def _next_trial(study, storage, spec: StudySpec):
    why = queue.stopped(study, spec)  # read just before the pop: the mark is written before the copy is enqueued
    if why:
        raise MetricMissing(why)
    trial = queue.pop_waiting(study, storage)
    if trial is not None or not spec.is_search:
        return trial
    if queue.sampled(study) < spec.trials:
        trial = study.ask()
        queue.reseed(study, spec, trial.number)
        return trial
    return _wait_for_confirm(study, storage, spec) if spec.confirm_top else None


CONFIRM_POLL_SECONDS = 5.0
CONFIRM_IDLE_SECONDS = 30.0  # no trial running and still no confirmations: their creator died in between


def _wait_for_confirm(study, storage, spec: StudySpec):
    """The search is drawn: a confirmation trial, once the last search trials (other workers') have finished
    and the best are known. A worker that found nothing to draw used to exit here, leaving one worker to run
    every confirmation alone (q7-search: four 1.5-minute trials on one of two cores)."""
    op = queue.optuna()
    idle_since = None
    while "confirmed" not in study.user_attrs:
        if _enqueue_confirm(study, spec):
            break
        running = storage.get_all_trials(study._study_id, deepcopy=False, states=(op.trial.TrialState.RUNNING,))
        if running:
            idle_since = None
        else:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > CONFIRM_IDLE_SECONDS:
                return None
        time.sleep(CONFIRM_POLL_SECONDS)
        queue.reclaim_stale(study, storage)  # a search trial whose worker died comes back as a waiting copy
        trial = queue.pop_waiting(study, storage)
        if trial is not None:
            return trial
    return queue.pop_waiting(study, storage)


def _enqueue_confirm(study, spec: StudySpec) -> bool:
    """After the search: the best `confirm_top` configurations again with the confirm seeds (once; the
    process that creates the marker study does it, when no search trial is still running)."""
    op = queue.optuna()
    spec = queue.stored_seeds(study, spec)  # grown by another process since this worker read its file
    trials = study.get_trials(deepcopy=False)
    if any(t.state == op.trial.TrialState.RUNNING for t in trials) or "confirmed" in study.user_attrs:
        return False
    try:
        op.create_study(study_name=f"{spec.name}::confirm", storage=study._storage, load_if_exists=False)
    except op.exceptions.DuplicatedStudyError:
        return False
    by_point: dict[str, list[float]] = {}
    for t in trials:  # the searched configurations only: the baseline is compared with them, not confirmed
        if (
            t.state == op.trial.TrialState.COMPLETE
            and "point" in t.user_attrs
            and t.user_attrs.get("phase", "search") == "search"
        ):
            by_point.setdefault(t.user_attrs["point"], []).append(t.value)
    sign = -1 if spec.goal == "maximize" else 1
    best = sorted(by_point, key=lambda p: sign * sum(by_point[p]) / len(by_point[p]))[: spec.confirm_top]
    # marked first: a worker that dies before enqueueing leaves the confirmations to the next resume, which
    # enqueues what the confirmed points lack the same way
    study.set_user_attr("confirmed", best)
    queue.enqueue_confirmations(study, spec)
    return True


# The report takes most of the engine's time per trial (~0.7 of 0.8 s on 2 cores: reading every trial, plotting):
# short trials on many workers would spend more time reporting than training. Trials longer than this still
# rewrite it each time they finish.
REPORT_SECONDS = 30.0
REPORT_SHARE = 20  # and at most 1/20 of a worker's time, however many trials the report reads

# Torch threads per trial, however many workers run: a thread count splits fp32 sums differently
# (LayerNorm's weight gradient, whole-tensor sums such as the gradient norm, MKL's long matmuls), so with
# cores / jobs threads a trial's last bits would depend on --jobs. Measured on 2 cores: two 1-thread
# workers run a grid at 0.89x the speed of one 2-thread worker (README, *Studies*).
TRIAL_THREADS = 1


def _set_threads(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)


def work(
    spec: StudySpec,
    study_dir: Path,
    storage_url: str | None = None,
    show_progress: bool = False,
    threads: int = 0,
    max_trials: int | None = None,
    report: bool = True,
) -> WorkResult:
    """Take trials until none is left (or `max_trials` ran); returns how many this worker finished and
    where the time went (the engine's own share per trial is what the ≤ 2 s target is about)."""

    _set_threads(threads)
    op = queue.optuna()
    storage = open_storage(storage_url, study_dir)
    study, created = queue.open_study(spec, storage, study_dir=study_dir)
    queue.enqueue_grid(study, spec, created)
    ensure_needs(spec, study_dir, show_progress)
    result = WorkResult()
    next_report, reported = time.monotonic(), 0
    while max_trials is None or result.finished < max_trials:
        loop_start = time.perf_counter()
        queue.reclaim_stale(study, storage)
        trial = _next_trial(study, storage, spec)
        if trial is None:
            break
        queue.claim(storage, trial._trial_id)
        point, seed, phase = _point_of(trial, spec)
        plan = build_plan(spec, point, seed, study_dir)
        trial.set_user_attr("key", plan.key)
        if show_progress:
            print(
                f"study {spec.name}: trial {trial.number} ({phase}) {canonical(point)} seed {seed} -> "
                f"{plan.directory(study_dir)}",
                flush=True,
            )
        prune_key = _prune_key(spec.metric)

        def on_eval(step: int, metrics: dict) -> None:
            if spec.pruner != "none" and isinstance(metrics.get(prune_key), (int, float)):
                trial.report(float(metrics[prune_key]), step)
                if trial.should_prune():
                    raise op.TrialPruned(f"pruned at step {step}")

        started = time.perf_counter()
        try:
            with queue.Heartbeat(storage, trial._trial_id):
                try:
                    summary = run_trial(spec, plan, study_dir, on_eval if queue_prunable(spec) else None, show_progress)
                finally:
                    trial_seconds = time.perf_counter() - started
        except KeyboardInterrupt:
            queue.requeue(study, storage, storage.get_trial(trial._trial_id), "interrupted; enqueued again")
            raise
        except StorageLost:
            raise  # the database's absence, not the trial's failure: the trial stays RUNNING and is re-queued
        except Exception as exc:  # pruned, or failed: recorded and the study goes on
            failure = exc
        else:
            failure = None
        if not _still_ours(storage, trial, plan.directory(study_dir)):
            continue
        if isinstance(failure, op.TrialPruned):
            trial.set_user_attr("error", str(failure))
            write_record(plan.directory(study_dir), {"key": plan.key, "point": point, "seed": seed, "status": "pruned"})
            study.tell(trial, state=op.trial.TrialState.PRUNED)
        elif failure is not None:
            trial.set_user_attr("error", error_line(failure))
            write_record(
                plan.directory(study_dir),
                {"key": plan.key, "point": point, "seed": seed, "status": "failed", "error": error_line(failure)},
            )
            study.tell(trial, state=op.trial.TrialState.FAIL)
        else:
            _tell_summary(spec, study, storage, trial, summary, trial_seconds, plan.directory(study_dir))
        result.finished += 1
        if report and time.monotonic() >= next_report:
            started = time.monotonic()
            write_study_report(spec, study_dir, study)
            took = time.monotonic() - started  # grows with the trials in the storage: it reads them all
            next_report, reported = time.monotonic() + max(REPORT_SECONDS, REPORT_SHARE * took), result.finished
        result.trial_seconds.append(trial_seconds)
        result.engine_seconds.append(time.perf_counter() - loop_start - trial_seconds)
    if report and result.finished > reported:
        started = time.perf_counter()
        write_study_report(spec, study_dir, study)  # what this worker saw last, whatever the throttle skipped
        result.engine_seconds[-1] += time.perf_counter() - started
    return result


def _tell_summary(spec: StudySpec, study, storage, trial, summary: dict, seconds: float, directory: Path) -> None:
    """A finished run's metric told to optuna, with every number of its summary kept in the storage (a report
    on another machine reads them there); a diverged metric fails the trial, a missing one stops the study."""
    op = queue.optuna()
    value = lookup(summary, spec.metric)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isfinite(value):
        # a diverged run (nan / inf): a failed trial, not a missing metric
        trial.set_user_attr("error", f"{spec.metric} is not finite (the run diverged)")
        study.tell(trial, state=op.trial.TrialState.FAIL)
    elif not isinstance(value, (int, float)) or isinstance(value, bool):
        flat = sorted(k for k, v in flatten(summary).items() if isinstance(v, (int, float)))
        message = (
            f"study {spec.name}: trials produce no metric {spec.metric!r} (the finished trial is kept "
            f"in {directory}); numeric keys of its summary: {', '.join(flat[:40])}"
        )
        queue.stop(study, spec.metric, message)
        queue.requeue(
            study, storage, storage.get_trial(trial._trial_id), f"metric {spec.metric} missing; kept and enqueued again"
        )
        raise MetricMissing(message)
    else:
        trial.set_user_attr("results", {k: v for k, v in flatten(summary).items() if isinstance(v, (int, float))})
        trial.set_user_attr("curves", stored_curves(directory))
        trial.set_user_attr("seconds", seconds)
        study.tell(trial, float(value))


def _still_ours(storage, trial, directory: Path) -> bool:
    """Whether the trial is still this worker's to finish: a worker cut off from the database for longer than
    the grace period finds its trial re-queued by the others (the retry resumes from the same directory)."""
    if not storage.get_trial(trial._trial_id).state.is_finished():
        return True
    print(
        f"trial {trial.number} was queued again while this worker was cut off; its run is kept in {directory}",
        file=sys.stderr,
        flush=True,
    )
    return False


def queue_prunable(spec: StudySpec) -> bool:

    return spec.pruner != "none" and kind(spec.run).prunable


def warm_caches(spec: StudySpec, study_dir: Path, show_progress: bool) -> None:
    """Corpus preparation, tokenizer training and tokenisation once per distinct data setting, before
    workers start (content-cached: trials then find them ready instead of making them side by side)."""
    if spec.run != "pretrain":
        return

    seen = set()
    points = spec.grid_points() if not spec.is_search else [{}]
    for point in points:
        cfg = build_plan(spec, point, spec.seeds[0], study_dir).config
        if cfg.model.init or cfg.tokenizer.path:
            continue
        tag = canonical([cfg.data.__dict__, cfg.tokenizer.__dict__, cfg.train.objective])
        if tag not in seen:
            seen.add(tag)
            try:
                prepare_data(cfg.data, cfg.tokenizer, show_progress=show_progress, objective=cfg.train.objective)
            except UserError:
                pass  # e.g. a corpus that is not there: its trials fail and are recorded with that error


def _worker_command(spec: StudySpec, source: str, study_dir: Path, threads: int) -> list[str]:
    """A worker's command line; the storage URL (and its password) travels in its environment (STORAGE_ENV).
    It names the seeds the launcher stored (a --seeds that grew the study), so no worker grows it again."""
    cmd = [
        sys.executable,
        "-m",
        "masklab.cli",
        "study",
        source,
        "--out",
        str(study_dir),
        "--worker",
        "--quiet",
        "--threads",
        str(threads),
    ]
    if spec.scale:
        cmd += ["--scale", spec.scale]
    if not spec.is_search or spec.confirm_top:
        cmd += ["--seeds", seeds_text(spec.confirm_seeds if spec.is_search else spec.seeds)]
    return cmd


def _worker_env(storage: str | None, threads: int, gpu: int | None) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop(STORAGE_ENV, None)
    if storage:
        env[STORAGE_ENV] = storage
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return env


def _relay_stderr(stream, errors: list[str]) -> None:
    """Copy a worker's stderr to ours as it comes (progress, warnings, tracebacks), but keep its
    `masklab: error:` lines back in `errors`: the launcher raises the first as its own one line."""
    prefix = "masklab: error: "
    for line in stream:
        if line.startswith(prefix):
            errors.append(line[len(prefix) :].rstrip("\n"))
        else:
            sys.stderr.write(line)
            sys.stderr.flush()


def run_study(
    spec: StudySpec,
    source: str,
    study_dir: Path,
    jobs: int = 0,
    storage_url: str | None = None,
    show_progress: bool = True,
    on_progress=None,
    threads: int = TRIAL_THREADS,
) -> dict:
    """The whole study: check every point, make needs, warm caches, run `jobs` workers (0 = one per GPU,
    else as many as the cores hold at `threads` each), write the report (returns its headline: finding,
    verdict, counts, table)."""

    if jobs < 0 or threads < 1:
        raise UserError(f"--jobs must be >= 0 (0 = as many as fit) and --threads >= 1 (got {jobs}, {threads})")
    for seed in spec.seeds[:1]:
        for point in (
            spec.grid_points() if not spec.is_search else [_search_corner(spec, "low"), _search_corner(spec, "high")]
        ):
            build_plan(spec, point, seed, study_dir)  # every bad key or value fails now, before anything runs
    storage = open_storage(storage_url, study_dir)
    study, created = queue.open_study(spec, storage, study_dir=study_dir)
    queue.clear_stop(study)
    queue.enqueue_grid(study, spec, created)
    ensure_needs(spec, study_dir, show_progress)
    warm_caches(spec, study_dir, show_progress)
    gpus = _gpu_count()
    if jobs == 0:
        jobs = gpus or max(1, (os.cpu_count() or 1) // threads)
    if jobs == 1:
        work(spec, study_dir, storage_url, show_progress=show_progress, threads=threads)
    else:
        procs = []
        for i in range(jobs):
            procs.append(
                subprocess.Popen(
                    _worker_command(spec, source, study_dir, threads),
                    env=_worker_env(storage_url, threads, i % gpus if gpus else None),
                    stderr=subprocess.PIPE,
                    text=True,
                    errors="replace",
                )
            )
        errors: list[str] = []
        relays = [threading.Thread(target=_relay_stderr, args=(p.stderr, errors), daemon=True) for p in procs]
        for relay in relays:
            relay.start()
        try:
            while any(p.poll() is None for p in procs):
                if on_progress:
                    on_progress(queue.counts(study))
                time.sleep(2)
        except KeyboardInterrupt:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait()
            raise
        for relay in relays:
            relay.join(timeout=5)
        bad = [p.returncode for p in procs if p.returncode not in (0, None)]
        if 2 in bad:
            # the worker's own one-line message is the study's: repeat it rather than point at scrolled-away output
            raise UserError(errors[0] if errors else f"study {spec.name}: a worker stopped on bad input")
        if bad:
            raise RuntimeError(
                f"study {spec.name}: {len(bad)} worker(s) exited with {bad}; rerun the same command to resume"
            )
    return write_study_report(spec, study_dir, study)


def _search_corner(spec: StudySpec, end: str) -> dict:
    """The search space's low (or high) corner: enough to check every key and bound before searching."""
    out = {}
    for key, p in spec.search.items():
        if p.type == "categorical":
            out[key] = p.choices[0 if end == "low" else -1]
        else:
            value = p.low if end == "low" else p.high
            out[key] = int(value) if p.type == "int" else float(value)
    return out


def _gpu_count() -> int:
    return torch.cuda.device_count()
