"""The `study` command: one command per question (a study file or builtin:NAME), run, joined or inspected."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def study(
    source: str = typer.Argument(
        ...,
        help="A study YAML file, or builtin:NAME (q1-init, q2-forgetting, q3-transfer, "
        "q4-masking-rate, q4-masking-strategy, q5-objectives, q6-generation, q7-recipe, q7-search).",
    ),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        "-o",
        help="Study directory (default studies/NAME): trials/, journal.log, report.md, report.html, results.csv.",
    ),
    scale: Optional[str] = typer.Option(None, "--scale", help="quick (fits 2 CPU cores; the default) or full (GPUs)."),
    seeds: Optional[str] = typer.Option(
        None,
        "--seeds",
        help="The seeds, e.g. 0-3 or 0,1,2,3 (a search: its confirmation seeds). More than the study has grows it: "
        "its finished trials are kept and only the new seeds' trials run, as its report suggests when an answer "
        "is within seed noise.",
    ),
    jobs: int = typer.Option(
        0,
        "--jobs",
        "-j",
        help="Worker processes on this machine (0 = cores / --threads, or one "
        "per GPU). Any --jobs gives every trial the same numbers.",
    ),
    storage: Optional[str] = typer.Option(
        None,
        "--storage",
        envvar="MASKLAB_STUDY_STORAGE",
        show_envvar=True,
        help="An optuna storage URL (postgresql://...) shared by workers on many machines; "
        "default a journal file in the study directory. Set it in the environment "
        "instead to keep its password off the command line.",
    ),
    worker: bool = typer.Option(
        False, "--worker", help="Join the study as one worker: take trials until none is left."
    ),
    threads: int = typer.Option(
        1,
        "--threads",
        help="Torch threads per trial (the same whatever --jobs is: another "
        "thread count sums floats in another order, so its trials differ in the last bits).",
    ),
    status: bool = typer.Option(
        False, "--status", help="Print the trial counts per state and the finding so far; run nothing."
    ),
    report_only: bool = typer.Option(
        False, "--report", help="Rewrite report.md / report.html / results.csv; run nothing."
    ),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Queue the failed trials again (after fixing what made them fail), then run."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Run a study: a base run, a grid (or an optuna search) crossed with seeds, the metric that answers
    the question, and a report (mean ± sd, 95% CIs, paired comparisons, plots, the finding next to the
    published one). Killed studies resume; finished trials are never re-run; failed ones are recorded."""
    from masklab.study import queue
    from masklab.study.report import write_study_report
    from masklab.study.spec import load_spec
    from masklab.study.storage import open_storage
    from masklab.study.worker import run_study, work

    spec = load_spec(source, scale, seeds)
    directory = out or Path("studies") / spec.name
    if status or report_only:
        if not storage and not (directory / "journal.log").exists():
            typer.echo(f"{directory} holds no study yet; start it with: masklab study {source}")
            raise typer.Exit(0)
        store = open_storage(storage, directory)
        if not queue.exists(spec, store):
            typer.echo(f"the storage holds no study {spec.name} yet; start it with: masklab study {source}")
            raise typer.Exit(0)
        handle, _ = queue.open_study(spec, store, grow=False, study_dir=directory)
        directory.mkdir(parents=True, exist_ok=True)  # a report written on another machine than the workers'
        headline = write_study_report(spec, directory, handle)
        counts = headline["counts"]
        typer.echo(
            f"study {spec.name} ({directory}): "
            + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials")
        )
        typer.echo(" ".join(headline["finding"]))
        if headline["verdict"]:
            typer.echo(headline["verdict"])
        return
    if retry_failed:
        handle, created = queue.open_study(spec, open_storage(storage, directory), study_dir=directory)
        queue.enqueue_grid(handle, spec, created)  # a --seeds that grew it: its new trials, before run_study joins
        typer.echo(f"queued {queue.retry_failed(handle)} failed trial(s) again")
    if worker:
        done = work(spec, directory, storage, show_progress=not quiet, threads=threads)
        engine = (
            f"; engine {sum(done.engine_seconds) / len(done.engine_seconds):.2f} s per trial (queue, storage, report)"
            if done.engine_seconds
            else ""
        )
        typer.echo(f"worker finished {done.finished} trial(s) of study {spec.name}{engine}")
        return

    last: list[str] = []

    def progress(counts: dict) -> None:  # the workers' trial counts, printed when they change
        line = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        if not quiet and [line] != last:
            typer.echo(f"study {spec.name}: {line}", err=True)
            last[:] = [line]

    headline = run_study(
        spec,
        source,
        directory,
        jobs=jobs,
        storage_url=storage,
        show_progress=not quiet,
        on_progress=progress,
        threads=threads,
    )
    columns, table = headline["table"]
    if table:
        from masklab.report.pages import markdown_table

        typer.echo(markdown_table(columns, table))
    typer.echo(" ".join(headline["finding"]))
    if headline["verdict"]:
        typer.echo(headline["verdict"])
    typer.echo(f"wrote {directory}/report.md, report.html and results.csv")


def register(app: typer.Typer) -> None:
    app.command("study")(study)
