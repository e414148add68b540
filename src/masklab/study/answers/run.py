"""`masklab answers --run`: every ready-made study without a finished report, in the questions' order.

Each runs as `masklab study builtin:NAME --scale quick` does (worker.run_study, the same report writer) in
its own study directory, WORK/NAME (./studies/NAME by default, where `masklab study` keeps it), so a killed
--run resumes where it stopped, and so does `masklab study builtin:NAME`. A folder of the answers source
that already holds a study journal is resumed in place. When a study ends, only its report.md,
report.html, results.csv and plots/*.svg are copied into SOURCE/NAME: no trials, checkpoints or journal.
"""

from __future__ import annotations

from pathlib import Path

from masklab.fsutil import write_text_atomic
from masklab.study.answers.gather import finished
from masklab.study.answers.text import STUDY_ORDER
from masklab.study.spec import load_spec
from masklab.study.worker import run_study

REPORT_FILES = ("report.md", "report.html", "results.csv")  # results.csv last: with report.md it marks a copy finished


def missing(source: Path) -> list[str]:
    """The ready-made studies that have no finished report in `source`, in the order --run runs them."""
    return [name for name in STUDY_ORDER if not finished(source / name)]


def run_missing(source: Path, work: Path, show_progress: bool = True, on_progress=None, on_start=None) -> list[str]:
    """Run (or resume) each missing study at the quick scale and copy its report into `source`; returns them."""
    done = []
    for name in missing(source):
        spec = load_spec(f"builtin:{name}", "quick")
        target = source / name
        study_dir = target if (target / "journal.log").exists() else work / name
        if on_start:
            on_start(name, study_dir, spec.minutes)
        run_study(spec, f"builtin:{name}", study_dir, show_progress=show_progress, on_progress=on_progress)
        if study_dir.resolve() != target.resolve():
            copy_report(study_dir, target)
        done.append(name)
    return done


def copy_report(study_dir: Path, target: Path) -> None:
    """The report, results.csv and the plots (text files all), each replaced whole; stale plots removed."""
    (target / "plots").mkdir(parents=True, exist_ok=True)
    plots = sorted((study_dir / "plots").glob("*.svg"))
    for stale in set((target / "plots").glob("*.svg")) - {target / "plots" / p.name for p in plots}:
        stale.unlink()
    for plot in plots:
        write_text_atomic(target / "plots" / plot.name, plot.read_text(encoding="utf-8"))
    for name in REPORT_FILES:
        write_text_atomic(target / name, (study_dir / name).read_text(encoding="utf-8"))
