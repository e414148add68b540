"""The `answers` command: the finished ready-made studies on one page (Q1-Q7), English or Persian."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperCommand

RUN_HELP = (
    "First run, in order and resumably (rerun to continue), every ready-made study that has no finished "
    "report in the source folder, at --scale quick; then write the page. The nine quick studies' files state "
    "{minutes} in all on 2 CPU cores (the sum of their quick.minutes)."
)


class AnswersCommand(TyperCommand):
    """Fills the total quick-scale time into --run's help when help is shown: read from the study files then,
    so it never drifts from them, and `masklab --help` does not pay for reading them."""

    def format_help(self, ctx, formatter):
        from masklab.study.answers.text import quick_minutes

        total = quick_minutes()
        for param in self.params:
            if param.name == "run":
                param.help = RUN_HELP.format(minutes=f"{total:g} minutes ({total / 60:.1f} h)")
        return super().format_help(ctx, formatter)


def answers(
    dirs: Optional[List[Path]] = typer.Argument(
        None,
        help="Finished study folders, or folders of them (default: docs/studies of the masklab checkout, "
        "else ./docs/studies). Each is named after the ready-made study it ran. With --run, the first is the "
        "folder of studies the new reports are copied into.",
        show_default=False,
    ),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        "-o",
        help="Where answers.md and answers.html go (default: answers/ beside the folder of studies, e.g. "
        "docs/answers, so the markdown's links reach the studies' plots).",
    ),
    lang: str = typer.Option("en", "--lang", help="en, or fa (Persian, right to left: answers.fa.md/.html)."),
    run: bool = typer.Option(False, "--run", help=RUN_HELP.format(minutes="their quick.minutes")),
    work: Path = typer.Option(
        Path("studies"),
        "--work",
        help="With --run: where the studies run (WORK/NAME, as `masklab study` keeps them, so either command "
        "resumes the other's); only their reports are copied into the source folder.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars (with --run)."),
):
    """One page with the answers to Q1-Q7, from the finished studies (English or Persian).

    For each question: the measured answer, the key plot, the table of paired differences within blocks with
    95% CIs, the published finding and the verdict, the command that reproduces it and the minutes it took,
    recomputed from each study's results.csv. A question whose study has not run says so."""
    from masklab.study.answers.build import default_out, write_answers
    from masklab.study.answers.gather import default_source
    from masklab.study.answers.text import check_lang

    check_lang(lang)
    sources = list(dirs) if dirs else [default_source()]
    if run:
        from masklab.errors import UserError
        from masklab.study.answers.gather import is_study_folder
        from masklab.study.answers.run import run_missing

        if is_study_folder(sources[0]):
            raise UserError(
                f"--run copies finished studies into a folder of studies; {sources[0]} is one study's folder: "
                f"pass the folder that holds it ({sources[0].parent})"
            )

        def started(name: str, study_dir: Path, minutes: float) -> None:
            typer.echo(
                f"answers: running study {name} in {study_dir} (stated ~{minutes:g} min at quick scale)", err=True
            )

        run_missing(sources[0], work, show_progress=not quiet, on_start=started)
    written = write_answers(sources, out or default_out(sources), lang)
    typer.echo("wrote " + " and ".join(str(p) for p in written))


def register(app: typer.Typer) -> None:
    app.command("answers", cls=AnswersCommand)(answers)
