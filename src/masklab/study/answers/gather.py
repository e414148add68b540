"""Finding the finished studies the answers page is made of, and reading their results.csv back.

A study folder is what `masklab study` writes (report.md, report.html, results.csv, plots/) or a copy of it
under docs/studies/NAME. It is named after the ready-made study it ran (the folder name, else the report's
"# Study NAME" heading), and its spec is that study file at the scale its report states (quick if none).

A study folder is **finished** when it holds results.csv and report.md and no trial in results.csv is
running or waiting. It is **still running** when results.csv lists a running or waiting trial, or when it
holds a study journal (journal.log) but no results.csv or report.md yet: its workers are at work, or were
stopped before the study ended (rerunning its command resumes it). A running study is refused, not shown
half-done: the page's answers are final ones.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from masklab.errors import UserError
from masklab.study.answers.text import STUDY_ORDER
from masklab.study.results import Row
from masklab.study.spec import StudySpec, builtin_names, load_spec

MARKERS = ("results.csv", "report.md", "journal.log")  # any of these makes a folder a study folder
ACTIVE = ("running", "waiting")
_SCALE = re.compile(r"; scale (\w+)[.;]")
_HEADING = re.compile(r"^# Study (\S+)")


@dataclass
class StudyFolder:
    name: str  # the ready-made study it ran
    path: Path
    scale: str


def default_source() -> Path:
    """docs/studies of the masklab checkout this code runs from; installed elsewhere, ./docs/studies."""
    checkout = Path(__file__).resolve().parents[4]
    if (checkout / "pyproject.toml").is_file() and (checkout / "docs" / "studies").is_dir():
        return checkout / "docs" / "studies"
    return Path("docs") / "studies"


def is_study_folder(path: Path) -> bool:
    return any((path / marker).exists() for marker in MARKERS)


def study_folders(dirs: list[Path]) -> list[StudyFolder]:
    """Every study folder in `dirs` (each a study folder or a folder of them), checked finished, in the
    questions' order. Bad input (no such folder, no study in it, an unknown or running study) is one line."""
    found: dict[str, StudyFolder] = {}
    for d in dirs:
        if not d.is_dir():
            raise UserError(f"{d} is not a folder; pass a study folder or a folder of them (e.g. docs/studies)")
        inside = [d] if is_study_folder(d) else sorted(p for p in d.iterdir() if p.is_dir() and is_study_folder(p))
        if not inside:
            raise UserError(
                f"{d} holds no study: expected a folder with results.csv and report.md (as `masklab study` writes "
                "them) or a folder of such folders, e.g. docs/studies"
            )
        for path in inside:
            folder = StudyFolder(study_name(path), path, study_scale(path))
            check_finished(folder)
            if folder.name in found:
                raise UserError(
                    f"study {folder.name} is given twice ({found[folder.name].path} and {path}); pass one of them"
                )
            found[folder.name] = folder
    return sorted(found.values(), key=lambda f: STUDY_ORDER.index(f.name) if f.name in STUDY_ORDER else len(found))


def study_name(path: Path) -> str:
    names = builtin_names()
    if path.name in names:
        return path.name
    report = path / "report.md"
    if report.is_file():
        m = _HEADING.match(report.read_text(encoding="utf-8"))
        if m and m.group(1) in names:
            return m.group(1)
    raise UserError(f"{path} is not a ready-made study: name its folder after the study it ran ({', '.join(names)})")


def study_scale(path: Path) -> str:
    """The scale the report states (`masklab study` writes "; scale NAME." in its set-up line), else quick."""
    report = path / "report.md"
    if report.is_file():
        m = _SCALE.search(report.read_text(encoding="utf-8"))
        if m:
            return m.group(1)
    return "quick"


def finished(path: Path) -> bool:
    """results.csv and report.md, and no trial running or waiting (see the module's definition)."""
    if not ((path / "results.csv").is_file() and (path / "report.md").is_file()):
        return False
    return not any(state in ACTIVE for state in _states(path / "results.csv"))


def check_finished(folder: StudyFolder) -> None:
    path, command = folder.path, f"masklab study builtin:{folder.name} --scale {folder.scale} --out {folder.path}"
    results = path / "results.csv"
    if results.is_file():
        states = _states(results)
        active = {s: states.count(s) for s in ACTIVE if s in states}
        if active:
            counts = ", ".join(f"{n} {s}" for s, n in active.items())
            raise UserError(
                f"study {folder.name} in {path} is still running ({counts} trials in results.csv); let it "
                f"finish (or resume it: {command}), then run masklab answers again"
            )
    if not (results.is_file() and (path / "report.md").is_file()):
        missing = " and ".join(f for f in ("results.csv", "report.md") if not (path / f).is_file())
        where = "its journal.log says it started" if (path / "journal.log").exists() else "it is incomplete"
        raise UserError(
            f"study {folder.name} in {path} has no {missing} yet ({where}): it is still running or was stopped; "
            f"finish it with: {command}"
        )


def _states(results: Path) -> list[str]:
    return [r.get("state", "") for r in csv.DictReader(io.StringIO(results.read_text(encoding="utf-8")))]


def load_folder_spec(folder: StudyFolder) -> StudySpec:
    return load_spec(f"builtin:{folder.name}", folder.scale)


def read_rows(path: Path, spec: StudySpec) -> list[Row]:
    """results.csv back as the study package's rows (results.write_csv's columns: trial, state, phase, the
    point's keys, seed, value, seconds, key, retry_of, error, then every number of the summary). A point is
    the study's own point whose cells read the same, so its values keep their types."""
    reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8")))
    header = next(reader, None)
    if not header or header[:3] != ["trial", "state", "phase"] or "seed" not in header or "error" not in header:
        raise UserError(f"{path} is not a study's results.csv (its first columns must be trial, state, phase)")
    # by position: a summary number may share a parameter's name (a finetune summary records its llrd too)
    seed_at, error_at = header.index("seed"), header.index("error")
    params, numbers = header[3:seed_at], header[error_at + 1 :]
    known = {} if spec.is_search else {tuple(cell(p.get(k)) for k in params): p for p in spec.grid_points()}
    out = []
    for line in reader:
        if not line:
            continue
        r = dict(zip(header[: error_at + 1], line))
        cells = tuple(line[3:seed_at])
        point = known.get(cells) or {k: _parse(c) for k, c in zip(params, cells) if c != ""}
        out.append(
            Row(
                number=int(r["trial"]),
                state=r["state"],
                phase=r["phase"],
                point=dict(point),
                seed=int(r["seed"]),
                key=r.get("key", ""),
                value=_number(r.get("value", "")),
                seconds=_number(r.get("seconds", "")),
                error=r.get("error", ""),
                retry_of=int(r["retry_of"]) if r.get("retry_of") else None,
                results={k: v for k, c in zip(numbers, line[error_at + 1 :]) if (v := _number(c)) is not None},
            )
        )
    return out


def cell(value) -> str:
    """A value as results.csv writes it (results._cell)."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _number(text: str) -> float | None:
    try:
        return float(text) if text != "" else None
    except ValueError:
        return None


def _parse(text: str):
    """A search point's cell: a number, a JSON list or mapping, a boolean, else the string itself."""
    if text in ("True", "False"):
        return text == "True"
    try:
        return json.loads(text)
    except ValueError:
        return text
