"""optuna is the queue for every study: grids are enqueued trials, searches are sampled ones.

- Storage: a journal file in the study directory by default (no server); any optuna storage URL
  (postgresql://, mysql://, sqlite:///) lets workers on many machines join one study (storage.py).
  The study and these functions share one storage object per process, so a trial popped here is a
  trial the study knows.
- Exactly once: the process whose `create_study` succeeds enqueues the grid (creation is atomic in
  every storage); trials are popped WAITING -> RUNNING by a state change that only one process wins.
  A second copy of a (point, seed) (two joiners finishing a dead creator's grid, two --retry-failed at
  once, an enqueue retried after a dropped connection) popped while the first waits or runs is set aside
  as a duplicate, never run. (One popped after the first finished runs again: on the first's machine it
  reads the finished trial back; finding it elsewhere would mean reading every finished trial per pop.)
- Liveness: optuna's journal storage has no heartbeat, so workers write one into each running trial's
  system attributes (with host and pid); a running trial whose worker is gone (pid dead on this host,
  or no heartbeat for GRACE seconds) is failed and enqueued again with the same point and seed.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import optuna as module

from masklab.errors import UserError
from masklab.study.spec import StudySpec, canonical, definition_hash
from masklab.study.trials import build_plan

HEARTBEAT_SECONDS = 15.0
GRACE_SECONDS = 120.0  # a heartbeat this old means the worker died (another host, or a frozen machine)


def optuna():

    module.logging.set_verbosity(module.logging.WARNING)
    return module


def _sampler(spec: StudySpec, seed: int = 0):
    op = optuna()
    samplers = {
        "tpe": lambda: op.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, spec.trials // 3))),
        "random": lambda: op.samplers.RandomSampler(seed=seed),
        "cmaes": lambda: op.samplers.CmaEsSampler(seed=seed),
    }
    return samplers[spec.sampler]()


def reseed(study, spec: StudySpec, number: int) -> None:
    """Seed the sampler by the trial's number before the trial draws its point. Every worker process builds its
    own sampler: with one seed for all, two workers drawing side by side drew the same configuration (q7-search's
    first six trials were three pairs, each pair training in one directory at once). Seeded by the number, the
    draws differ between workers and still repeat for a run that sees the same history."""
    study.sampler = _sampler(spec, seed=number)


def _pruner(spec: StudySpec):
    op = optuna()
    pruners = {
        "none": op.pruners.NopPruner,
        "median": lambda: op.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        "hyperband": op.pruners.HyperbandPruner,
    }
    return pruners[spec.pruner]()


def open_study(spec: StudySpec, storage, wait_seconds: float = 30.0, grow: bool = True, study_dir: Path | None = None):
    """(study, created): create it, or join the one of this name, refusing one with another definition. One that
    differs only in having more seeds grows the stored study (`grow`; without it, spec takes the stored seeds).
    One whose `base`, `needs` or `config` differ is joined where every trial the storage started resolves to the
    same config under spec (its key, checked against `study_dir`): a file that now pins what a default used to be."""
    op = optuna()
    direction = spec.goal
    try:
        study = op.create_study(
            study_name=spec.name,
            storage=storage,
            sampler=_sampler(spec),
            pruner=_pruner(spec),
            direction=direction,
            load_if_exists=False,
        )
        # the definition before its hash: a joiner waits for the hash, then compares definitions
        study.set_user_attr("definition", json.loads(canonical(spec.definition())))
        study.set_user_attr("definition_hash", spec.definition_hash())
        return study, True
    except op.exceptions.DuplicatedStudyError:
        pass
    study = op.load_study(study_name=spec.name, storage=storage, sampler=_sampler(spec), pruner=_pruner(spec))
    deadline = time.time() + wait_seconds
    while "definition_hash" not in study.user_attrs and time.time() < deadline:  # its creator is writing it now
        time.sleep(0.2)
    theirs = study.user_attrs.get("definition_hash")
    if theirs != spec.definition_hash():
        stored, ours = study.user_attrs.get("definition", {}), spec.definition()
        # a field an older masklab stored and this one counts as cosmetic (a report setting such as `factor`) does
        # not stop a study from resuming after an upgrade
        changed = [k for k in _changed_fields(stored, ours) if k in ours]
        pinned = [k for k in changed if k in RESOLVED]
        rest = [k for k in changed if k not in RESOLVED]
        if stored and pinned and set(rest) <= set(growing(spec)) and _same_trials(study, spec, study_dir):
            stored = {**stored, **{k: json.loads(canonical(ours[k])) for k in pinned}}
            study.set_user_attr("definition", stored)
            study.set_user_attr("definition_hash", definition_hash(stored))
            changed = rest
        if stored and not changed:
            return study, False
        if stored and set(changed) <= set(growing(spec)):
            return _grow(study, spec, stored, changed, grow)
        raise UserError(
            f"the storage already holds a study named {spec.name!r} with a different definition "
            f"({', '.join(changed) or 'unknown fields'} differ); give this one another name: or --out, "
            "or put the old definition back"
        )
    return study, False


# The fields that decide a study's trials only through the configs they resolve to: a change in them that leaves
# every trial's key (the hash of its resolved config) as it was names the same study. The ready-made studies came
# to pin values that a preset's measured defaults (config.PRESET_TRAINING) would now fill differently.
RESOLVED = ("base", "needs", "config")


def _same_trials(study, spec: StudySpec, study_dir: Path | None) -> bool:
    """Whether every trial the storage started would run as the same trial under spec (no started trial: yes)."""
    if study_dir is None:
        return False
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        if "key" not in attrs or "point" not in attrs:
            continue
        try:
            if build_plan(spec, json.loads(attrs["point"]), attrs["seed"], study_dir).key != attrs["key"]:
                return False
        except UserError:  # a point this spec cannot even build is another study
            return False
    return True


# The fields a study may grow in: more seeds keep every finished trial valid, so a study whose answer was within
# seed noise is settled by adding the seeds its report asks for (`--seeds`), not by running it again
GROWING = ("seeds", "confirm_seeds")


def growing(spec: StudySpec) -> tuple[str, ...]:
    """What this study may grow in: a grid its seeds; a search its confirmation seeds only (its searched points
    ran on the search seeds, and new draws would run on more)."""
    return ("confirm_seeds",) if spec.is_search else ("seeds",)


def stored_seeds(study, spec: StudySpec) -> StudySpec:
    """spec with the seeds its study stores (a study grown by another process since this one read its file)."""
    stored = study.user_attrs.get("definition", {})
    return replace(spec, **{k: list(stored[k]) for k in GROWING if k in stored and stored[k] != getattr(spec, k)})


def _grow(study, spec: StudySpec, stored: dict, changed: list[str], grow: bool):
    """Seeds only grow. More than the stored: store the larger definition and return created=True, so this
    process enqueues the new seeds' trials. Fewer (a command without the --seeds that grew it, or a reader that
    does not grow): adopt the stored seeds, so resuming, --status and --report see the whole study."""
    larger = {k: list(dict.fromkeys([*stored[k], *getattr(spec, k)])) for k in changed}
    if not grow or all(larger[k] == stored[k] for k in changed):
        for k in changed:
            setattr(spec, k, list(stored[k]))
        return study, False
    for k in changed:
        setattr(spec, k, larger[k])
    attrs = study.user_attrs
    if "queued" in attrs and "queued_seeds" not in attrs:  # marked by a masklab whose marks named no seeds
        study.set_user_attr("queued_seeds", {k: stored.get(k, []) for k in GROWING})
    study.set_user_attr("definition", json.loads(canonical(spec.definition())))
    study.set_user_attr("definition_hash", spec.definition_hash())
    return study, True


def _queued(study, spec: StudySpec) -> bool:
    """Are the fixed trials of these seeds enqueued? (A mark without seeds is from before studies grew: it
    covers the seeds the study was made with.)"""
    attrs = study.user_attrs
    if "queued_seeds" not in attrs:
        return "queued" in attrs
    return attrs["queued_seeds"] == _seeds_of(spec)


def _seeds_of(spec: StudySpec) -> dict[str, list[int]]:
    return {k: list(getattr(spec, k)) for k in GROWING}


def _changed_fields(theirs: dict, ours: dict) -> list[str]:
    ours = json.loads(canonical(ours))
    return sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))


def encode(value):
    """optuna parameters are scalars: lists and mappings travel as JSON text."""
    return value if isinstance(value, (int, float, str, bool)) or value is None else json.dumps(value)


def enqueue(study, point: dict, seed: int, phase: str, **attrs) -> None:
    study.enqueue_trial(
        {k: encode(v) for k, v in point.items()},
        user_attrs={"seed": seed, "phase": phase, "point": canonical(point), **attrs},
    )


def fixed_trials(spec: StudySpec) -> list[tuple[dict, int, str]]:
    """(point, seed, phase) of every trial known before the study starts: the grid's, seeds outermost so every
    point has one seed early; a search's baseline, with its seeds and the confirmation seeds (the best found is
    compared with it on those)."""
    if spec.is_search:
        seeds = list(dict.fromkeys([*spec.seeds, *spec.confirm_seeds])) if spec.baseline else []
        return [(dict(spec.baseline), seed, "baseline") for seed in seeds]
    return [(point, seed, "grid") for seed in spec.seeds for point in spec.grid_points()]


def enqueue_grid(study, spec: StudySpec, created: bool, wait_seconds: float = 60.0) -> None:
    """The fixed trials (fixed_trials). Only the creator enqueues; joiners wait for its `queued` mark (a creator
    that died mid-way is finished by a joiner, skipping the points already there)."""
    if spec.is_search:
        enqueue_confirmations(study, stored_seeds(study, spec))
    fixed = fixed_trials(spec)
    if not fixed or _queued(study, spec):
        return
    if not created:
        deadline = time.time() + wait_seconds
        while not _queued(study, spec) and time.time() < deadline:
            time.sleep(0.5)
        if _queued(study, spec):
            return
    present = {(t.user_attrs.get("point"), t.user_attrs.get("seed")) for t in study.get_trials(deepcopy=False)}
    n = 0
    for point, seed, phase in fixed:
        if (canonical(point), seed) not in present:
            enqueue(study, point, seed, phase)
            n += 1
    study.set_user_attr("queued", n + len(present))
    study.set_user_attr("queued_seeds", _seeds_of(spec))


def enqueue_confirmations(study, spec: StudySpec) -> int:
    """The confirmed points' trials on every confirmation seed they lack: a search grown (--seeds) after it
    confirmed gets its new seeds here, whichever process grew it and whenever. A pair two processes enqueue at
    once runs once (pop_waiting drops the twin)."""
    confirmed = study.user_attrs.get("confirmed", [])
    if not confirmed:
        return 0
    present = {(t.user_attrs.get("point"), t.user_attrs.get("seed")) for t in study.get_trials(deepcopy=False)}
    n = 0
    for point in confirmed:
        for seed in spec.confirm_seeds:
            if (point, seed) not in present:
                enqueue(study, json.loads(point), seed, "confirm")
                n += 1
    return n


def pop_waiting(study, storage):
    """A WAITING trial turned RUNNING by this process (None when none is left). `storage` is the study's own
    storage object, so the trial is one its study can write parameters to."""
    op = optuna()
    queued = (op.trial.TrialState.WAITING, op.trial.TrialState.RUNNING)
    for frozen in storage.get_all_trials(study._study_id, deepcopy=False, states=(op.trial.TrialState.WAITING,)):
        try:
            if not storage.set_trial_state_values(frozen._trial_id, state=op.trial.TrialState.RUNNING):
                continue
        except op.exceptions.UpdateFinishedTrialError:
            continue
        # waiting and running trials only: the database filters them, so a pop costs the same at 10 or 10,000 trials
        twin = _twin(storage.get_all_trials(study._study_id, deepcopy=False, states=queued), frozen)
        if twin is None:
            return op.trial.Trial(study, frozen._trial_id)
        storage.set_trial_user_attr(frozen._trial_id, "duplicate_of", twin.number)
        storage.set_trial_state_values(frozen._trial_id, state=op.trial.TrialState.FAIL)
    return None


def _twin(queued, mine):
    """The copy of this (point, seed) that runs instead of `mine`, or None: of the copies waiting or running, the
    earliest created. Copies popped at the same instant both see it, so exactly one of them runs."""
    key = (mine.user_attrs.get("point"), mine.user_attrs.get("seed"))
    if key[0] is None:
        return None
    return next(
        (
            t
            for t in queued
            if t._trial_id < mine._trial_id and (t.user_attrs.get("point"), t.user_attrs.get("seed")) == key
        ),
        None,
    )


def claim(storage, trial_id: int) -> None:
    storage.set_trial_system_attr(trial_id, "masklab_host", socket.gethostname())
    storage.set_trial_system_attr(trial_id, "masklab_pid", os.getpid())
    storage.set_trial_system_attr(trial_id, "masklab_heartbeat", time.time())


class Heartbeat:
    """Writes the running trial's heartbeat every HEARTBEAT_SECONDS from a daemon thread."""

    def __init__(self, storage, trial_id: int, interval: float = HEARTBEAT_SECONDS):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.storage.set_trial_system_attr(self.trial_id, "masklab_heartbeat", time.time())
            except Exception:  # a storage hiccup must not kill the trial; the next beat tries again
                pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# (trial id, pop time) -> when this process first saw it RUNNING with no claim yet. Timed on this process's
# clock: the pop time optuna stores is the popping machine's local time, hours off on a machine in another time
# zone, so it only tells trials apart. The id alone would not: ids restart at 0 in every study, and one process
# runs several studies (masklab answers --run), so a trial just popped would find another study's old sighting
# of its id and be re-queued before its worker could claim it.
_UNCLAIMED_SINCE: dict[tuple, float] = {}


def is_stale(frozen, now: float, grace: float = GRACE_SECONDS) -> bool:
    attrs = frozen.system_attrs
    if "masklab_pid" not in attrs:  # popped a moment ago and its claim is being written, or its worker died in between
        return now - _UNCLAIMED_SINCE.setdefault((frozen._trial_id, frozen.datetime_start), now) > grace
    if attrs.get("masklab_host") == socket.gethostname() and attrs["masklab_pid"] != os.getpid():
        return not _alive(int(attrs["masklab_pid"]))
    return now - float(attrs.get("masklab_heartbeat", now)) > grace


def requeue(study, storage, frozen, reason: str) -> bool:
    """Fail a trial whose worker is gone and enqueue it again (same point, seed and phase); its
    directory keeps the checkpoint, so the retry resumes. False when another process got there first."""
    op = optuna()
    try:  # the reason first: a finished trial takes no more attributes
        storage.set_trial_user_attr(frozen._trial_id, "error", reason)
        if not storage.set_trial_state_values(frozen._trial_id, state=op.trial.TrialState.FAIL):
            return False
    except op.exceptions.UpdateFinishedTrialError:
        return False
    attrs = frozen.user_attrs
    point = json.loads(attrs["point"]) if "point" in attrs else decode_params(frozen.params)
    enqueue(study, point, attrs.get("seed", 0), attrs.get("phase", "search"), retry_of=frozen.number)
    return True


def reclaim_stale(study, storage) -> int:
    op = optuna()
    now, n = time.time(), 0
    for frozen in storage.get_all_trials(study._study_id, deepcopy=False, states=(op.trial.TrialState.RUNNING,)):
        if is_stale(frozen, now) and requeue(
            study, storage, frozen, "its worker stopped (killed or lost); enqueued again"
        ):
            n += 1
    return n


def stop(study, metric: str, message: str) -> None:
    """Mark the study stopped: its trials produce no `metric`. Written before the finished trial's copy is
    enqueued, so a worker that started late (two workers, one trial) reads the mark instead of popping the copy,
    reading the kept run back and missing the metric a second time."""
    study.set_user_attr("stopped", {"metric": metric, "message": message})


def stopped(study, spec: StudySpec) -> str | None:
    """The stop's message while it applies to this definition (one with another metric runs)."""
    mark = study.user_attrs.get("stopped")
    return mark["message"] if mark and mark.get("metric") == spec.metric else None


def clear_stop(study) -> None:
    """A new `masklab study` command is a new attempt (masklab itself may have been fixed to produce the metric)."""
    if study.user_attrs.get("stopped"):
        study.set_user_attr("stopped", None)


def retry_failed(study) -> int:
    """Enqueue every failed trial again (once: not those already retried), e.g. after fixing what failed."""
    op = optuna()
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    n = 0
    for t in trials:
        if (
            t.state == op.trial.TrialState.FAIL
            and t.number not in retried
            and "point" in t.user_attrs
            and "duplicate_of" not in t.user_attrs
        ):
            attrs = t.user_attrs
            enqueue(
                study, json.loads(attrs["point"]), attrs.get("seed", 0), attrs.get("phase", "grid"), retry_of=t.number
            )
            n += 1
    return n


def decode_params(params: dict) -> dict:
    """optuna parameters back to point values (JSON text back to lists and mappings)."""
    out = {}
    for key, value in params.items():
        if isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        out[key] = value
    return out


def exists(spec: StudySpec, storage) -> bool:
    return spec.name in optuna().study.get_all_study_names(storage)


def counts(study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
    return out


def sampled(study) -> int:
    """Configurations the search has drawn (enqueued copies: seeds, confirmations and retries don't count)."""
    return sum(1 for t in study.get_trials(deepcopy=False) if "fixed_params" not in t.system_attrs)
