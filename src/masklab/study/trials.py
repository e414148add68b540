"""One trial: a point of the study and a seed, resolved into the kind's config, named by its hash.

The directory `STUDY/trials/KEY` is named by the hash of the resolved config (with the seed), so a retried
or re-run trial finds its own checkpoint and resumes, and a finished one (trial.json says complete) is
read back instead of trained again. Needs are runs every trial shares, made once per study directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from masklab.errors import UserError
from masklab.fsutil import write_text_atomic
from masklab.study.kinds import kind, resolved
from masklab.study.spec import NEED_PREFIX, Need, StudySpec, canonical, override_text


@dataclass
class TrialPlan:
    point: dict
    seed: int
    key: str
    config: Any  # the kind's typed config, ready to run

    def directory(self, study_dir: Path) -> Path:
        return study_dir / "trials" / self.key


def need_key(name: str, need: Need) -> str:
    return f"{name}-{hashlib.sha1(canonical([need.run, need.base, need.config]).encode()).hexdigest()[:10]}"


def need_dir(study_dir: Path, spec: StudySpec, name: str) -> Path:
    return study_dir / "needs" / need_key(name, spec.needs[name])


def _substitute(value: Any, paths: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, path in paths.items():
            value = value.replace(f"{NEED_PREFIX}{name}}}", path)
        return value
    if isinstance(value, list):
        return [_substitute(v, paths) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, paths) for k, v in value.items()}
    return value


def overrides(base: dict, point: dict, seed_key: str | None = None, seed: int | None = None) -> list[str]:
    """base, then the point (its `_label` and other _names are not config keys), then the seed, as --set texts."""
    items = {k: v for k, v in {**base, **point}.items() if not k.startswith("_")}
    if seed_key is not None:
        items[seed_key] = seed
    return [override_text(k, v) for k, v in items.items()]


def build_plan(spec: StudySpec, point: dict, seed: int, study_dir: Path) -> TrialPlan:
    """Resolve a point: a key that is not a config key, or a bad value, fails here with the kind's message."""
    k = kind(spec.run)
    absolute = str(study_dir.resolve())
    paths = {name: str(need_dir(study_dir, spec, name).resolve()) for name in spec.needs}
    try:
        cfg = k.build(
            spec.config, overrides(_substitute(spec.base, paths), _substitute(point, paths), k.seed_key, seed)
        )
    except UserError as exc:
        where = f" at {canonical(point)}" if point else ""
        raise UserError(f"study {spec.name}{where}: {exc}") from None
    # The key must not depend on where the study directory is: hash paths relative to it.
    portable = canonical(resolved(cfg)).replace(absolute, "${study}")
    key = hashlib.sha1(canonical([spec.run, portable, spec.evaluate]).encode()).hexdigest()[:12]
    return TrialPlan(point, seed, key, cfg)


def record_path(directory: Path) -> Path:
    return directory / "trial.json"


def read_record(directory: Path) -> dict | None:
    path = record_path(directory)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def write_record(directory: Path, record: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomic(record_path(directory), json.dumps(record, indent=1, ensure_ascii=False, default=str))


def run_trial(spec: StudySpec, plan: TrialPlan, study_dir: Path, on_eval=None, show_progress: bool = False) -> dict:
    """The trial's summary: read back when it finished before, else trained (resuming a checkpoint). Two trials
    of one configuration (a search that draws a point twice, a copy of a re-queued trial) share its directory: a
    lock lets one train while the other waits, then reads the result back, rather than both writing one
    checkpoint at once."""
    directory = plan.directory(study_dir)
    with file_lock(directory / ".lock"):
        done = read_record(directory)
        if done and done.get("status") == "complete":
            return done["summary"]
        summary = kind(spec.run).run(plan.config, directory, on_eval, show_progress, spec.evaluate)
        write_record(
            directory,
            {"key": plan.key, "point": plan.point, "seed": plan.seed, "status": "complete", "summary": summary},
        )
    return summary


CURVE_POINTS = 64  # records kept per kind (training, evaluation) and log: enough to draw, a few kB in the storage


def stored_curves(directory: Path) -> list[list[dict]]:
    """A trial's learning curves as the report draws them (one list of records per metrics.jsonl: pretraining's
    in the trial, fine-tuning's per seed directory), numbers only and thinned to CURVE_POINTS training and
    CURVE_POINTS evaluation records each. Kept in the storage, so a report on another machine needs no disk here."""
    files = (
        [directory / "metrics.jsonl"]
        if (directory / "metrics.jsonl").exists()
        else sorted(directory.glob("seed-*/metrics.jsonl"))
    )
    return [_thin([r for r in _numeric_records(f) if "tokens" in r]) for f in files]


def _numeric_records(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        out.append({k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return out


def _thin(records: list[dict]) -> list[dict]:
    """At most CURVE_POINTS evenly spaced training records and as many evaluation ones, the last of each kept."""
    evals = [r for r in records if any(k.startswith("val_") for k in r)]
    train = [r for r in records if not any(k.startswith("val_") for k in r)]
    keep = []
    for series in (train, evals):
        step = max(1, -(-len(series) // CURVE_POINTS))
        keep += series[::step] + (series[-1:] if series and (len(series) - 1) % step else [])
    return sorted(keep, key=lambda r: (r.get("step", 0), r.get("tokens", 0)))


def error_line(exc: BaseException) -> str:
    """What a failed trial records: the message, and where a bug (not bad input) happened."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, UserError):
        return text
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {text}{where}"


@contextmanager
def file_lock(path: Path):
    """One process at a time on this machine (needs, cache warm-up); released when the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_needs(spec: StudySpec, study_dir: Path, show_progress: bool) -> None:
    """Make each need once (a lock keeps concurrent workers on this machine from making it twice)."""
    for name, need in spec.needs.items():
        directory = need_dir(study_dir, spec, name)
        with file_lock(study_dir / "needs" / ".lock"):
            if (directory / "summary.json").exists():
                continue
            k = kind(need.run)
            try:
                cfg = k.build(need.config, overrides(need.base, {}))
            except UserError as exc:
                raise UserError(f"study {spec.name}: needs.{name}: {exc}") from None
            print(f"study {spec.name}: making needs.{name} ({need.run}) in {directory}", flush=True)
            k.run(cfg, directory, None, show_progress, {})


def lookup(summary: dict, key: str) -> Any:
    """A dotted key of a (nested) summary, or None."""
    value: Any = summary
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def flatten(summary: dict, prefix: str = "") -> dict[str, float | str]:
    """Every number (and short string) of a summary under dotted keys; lists are left out."""
    out: dict[str, float | str] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, bool):
            out[name] = int(value)
        elif isinstance(value, (int, float)):
            out[name] = value
        elif isinstance(value, str) and len(value) <= 80:
            out[name] = value
    return out
