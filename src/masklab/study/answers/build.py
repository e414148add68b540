"""Writing the answers page: the finished studies gathered, their answers recomputed, the page written."""

from __future__ import annotations

from pathlib import Path

from masklab.study.answers.gather import study_folders
from masklab.study.answers.measure import measure
from masklab.study.answers.page import write_pages
from masklab.study.answers.text import check_lang


def write_answers(dirs: list[Path], out: Path, lang: str = "en") -> list[Path]:
    """Gather the finished studies in `dirs`, recompute their answers and write the page; returns its files."""
    check_lang(lang)
    answers = {folder.name: measure(folder) for folder in study_folders(dirs)}
    return write_pages(answers, out, lang, dirs)


def default_out(dirs: list[Path]) -> Path:
    """answers/ beside the folder that holds the studies (docs/studies -> docs/answers), so the markdown's
    relative links reach the studies' plots wherever the two folders are put together."""
    first = dirs[0]
    holder = first.parent if (first / "results.csv").exists() or (first / "report.md").exists() else first
    return holder.parent / "answers"
