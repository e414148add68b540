"""Continual-learning reports: one sequence (DIR/report.md + report.html), and several side by side
(`masklab compare DIR...`: a table over methods and the learning-vs-forgetting curve).

Every figure is the mean over seeds, ± the sample standard deviation where several seeds ran. The HTML
embeds its images (base64), so it works offline.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from masklab.errors import UserError
from masklab.fsutil import write_text_atomic
from masklab.report.pages import STYLE
from masklab.report.plots import _pyplot

DEFINITIONS = [
    (
        "accuracy matrix R[stage][task]",
        "test accuracy of each task after each stage; stage 0 is the start with a linear probe "
        "per task, and tasks not trained yet are scored with a linear probe on the current encoder",
    ),
    ("average accuracy", "mean of the last row (Chaudhry et al. 2018, arXiv 1801.10112)"),
    (
        "forgetting",
        "accuracy right after learning a task minus at the end, R[j][j] − R[T][j] (as Avalanche reports it)",
    ),
    (
        "BWT",
        "mean over all but the last task of R[T][j] − R[j][j]; negative means forgetting (Lopez-Paz & Ranzato 2017, "
        "arXiv 1706.08840)",
    ),
    (
        "FWT",
        "mean over tasks after the first of R[j−1][j] − R[0][j]: how much earlier tasks helped a probe on task j "
        "(same paper)",
    ),
    (
        "probe-recovered accuracy",
        "a task's head refit (linear probe) on the frozen final encoder: what the encoder still knows "
        "when the old head is confused (Davari et al. 2022, arXiv 2203.13381)",
    ),
    (
        "ΔMLM",
        "masked-LM loss on held-out general text with fixed masks, through the start's MLM head tied to the current "
        "embeddings, last stage minus stage 0 (adapters scored as they act)",
    ),
    (
        "learning gap",
        "accuracy of fine-tuning a task alone from the start minus R[j][j] (how much less the method learned)",
    ),
]


def _pm(value, std, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f} ± {std:.{digits}f}" if std is not None else f"{value:.{digits}f}"


def _field(summary: dict, key: str, i: int | None = None, j: int | None = None, digits: int = 3) -> str:
    value, std = summary.get(key), summary.get(f"{key}_std")
    for index in (i, j):
        if index is not None and value is not None:
            value, std = value[index], (std[index] if std else None)
    multi = len(summary.get("seeds", [])) > 1
    return _pm(value, std if multi else None, digits)


def matrix_markdown(summary: dict) -> str:
    tasks = summary["tasks"]
    lines = ["| after stage | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for k in range(len(summary["accuracy_matrix"])):
        label = "0 (start, probes)" if k == 0 else f"{k} ({tasks[k - 1]})"
        lines.append(
            f"| {label} | " + " | ".join(_field(summary, "accuracy_matrix", k, j) for j in range(len(tasks))) + " |"
        )
    lines.append(
        "| probe on the final encoder | "
        + " | ".join(_field(summary, "probe_recovered_accuracy", j) for j in range(len(tasks)))
        + " |"
    )
    return "\n".join(lines)


SUMMARY_ROWS = (
    ("average accuracy", "average_accuracy"),
    ("mean forgetting", "mean_forgetting"),
    ("BWT", "bwt"),
    ("FWT", "fwt"),
    ("mean learning accuracy R[j][j]", "mean_learning_accuracy"),
    ("mean learning gap to each task alone", "mean_learning_gap"),
    ("ΔMLM (general text)", "delta_mlm"),
    ("Δ pseudo-perplexity", "delta_pseudo_perplexity"),
)


def summary_markdown(summary: dict) -> str:
    lines = ["| measure | value |", "|---|---|"]
    lines += [f"| {label} | {_field(summary, key)} |" for label, key in SUMMARY_ROWS]
    seconds = summary.get("seconds_per_stage") or []
    lines.append(
        "| seconds per stage (training + end of task) | "
        + ", ".join(_field(summary, "seconds_per_stage", i, digits=0) for i in range(len(seconds)))
        + " |"
    )
    lines.append(f"| trainable parameters | {int(summary['trainable_parameters']):,} |")
    return "\n".join(lines)


def plot_sequence(summary: dict, path: Path) -> Path:
    """Accuracy of every task across stages (the final probe as a hollow marker), and ΔMLM per stage."""
    plt = _pyplot()
    fig, (ax_a, ax_m) = plt.subplots(1, 2, figsize=(11, 4))
    matrix, std = summary["accuracy_matrix"], summary.get("accuracy_matrix_std")
    stages = list(range(len(matrix)))
    for j, task in enumerate(summary["tasks"]):
        ys = [row[j] for row in matrix]
        err = [row[j] for row in std] if std else None
        line = ax_a.errorbar(stages, ys, yerr=err, marker="o", capsize=2, label=task)[0]
        ax_a.plot(
            [stages[-1] + 0.15],
            [summary["probe_recovered_accuracy"][j]],
            marker="o",
            mfc="none",
            color=line.get_color(),
            markersize=9,
        )
        ax_a.axvline(j + 1, color=line.get_color(), alpha=0.15)
    ax_a.set(
        title="test accuracy after each stage (hollow: probe on the final encoder)", xlabel="stage", ylabel="accuracy"
    )
    ax_a.legend(fontsize=8)
    if summary.get("mlm_loss"):
        ax_m.errorbar(stages, summary["mlm_loss"], yerr=summary.get("mlm_loss_std"), marker="o", capsize=2)
    ax_m.set(title="masked-LM loss on held-out general text", xlabel="stage", ylabel="cross-entropy")
    for ax in (ax_a, ax_m):
        ax.grid(alpha=0.3)
        ax.set_xticks(stages)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_layer_drift(summaries: list[dict], path: Path) -> Path | None:
    """Per layer and stage: relative weight change from the stage before, and CKA with it (first seed)."""
    layers = [entry for entry in summaries[0].get("layers") or [] if entry]
    if not layers:
        return None
    plt = _pyplot()
    fig, (ax_w, ax_c) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(layers[0]["weight_change"])
    labels = ["emb" if n == "embeddings" else n.replace("layer_", "L") for n in names]
    for k, entry in enumerate(layers, 1):
        ax_w.plot(labels, [entry["weight_change"][n] for n in names], marker="o", label=f"stage {k}")
        ax_c.plot(labels, [entry["cka"][n] for n in names], marker="o", label=f"stage {k}")
    ax_w.set(title="relative weight change from the stage before", xlabel="layer (bottom to top)")
    ax_c.set(title="linear CKA with the stage before", xlabel="layer (bottom to top)", ylim=(0, 1.05))
    for ax in (ax_w, ax_c):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _embed(images: list[Path]) -> str:
    return "".join(
        f'<figure><img alt="{p.stem}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        f"<figcaption>{p.stem}</figcaption></figure>"
        for p in images
    )


def _md_to_html_table(md: str) -> str:
    rows = [line.strip("|").split("|") for line in md.splitlines() if not line.startswith("|---")]
    head = "".join(f"<th>{html.escape(c.strip())}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def _write_pages(out: Path, stem: str, title: str, md: str, body: str) -> None:
    """STEM.md, and STEM.html: `body` plus the definitions, self-contained."""
    write_text_atomic(out / f"{stem}.md", md)
    definitions = "".join(f"<dt>{html.escape(n)}</dt><dd>{html.escape(t)}</dd>" for n, t in DEFINITIONS)
    write_text_atomic(
        out / f"{stem}.html",
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}"
        "</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}<h2>Definitions</h2><dl>{definitions}</dl></body></html>",
    )


def write_report(out: Path, summary: dict, summaries: list[dict]) -> None:
    images = [plot_sequence(summary, out / "sequence.png")]
    drift = plot_layer_drift(summaries, out / "layer_drift.png")
    images += [drift] if drift else []
    seeds = len(summary.get("seeds", []))
    title = f"Continual learning: {summary['method']} ({summary['strength']})"
    intro = (
        f"Start: {summary['init']}; tasks in order: {', '.join(summary['tasks'])}; {seeds} seed(s), mean ± std. "
        f"MLM head: {summary.get('mlm_head') or 'none (no general_corpus)'}."
    )
    matrix, table = matrix_markdown(summary), summary_markdown(summary)
    md = (
        f"# {title}\n\n{intro}\n\n## Accuracy matrix\n\n{matrix}\n\n## Summary\n\n{table}\n\n## Definitions\n\n"
        + "\n".join(f"- **{name}**: {text}" for name, text in DEFINITIONS)
        + "\n\n"
        + "".join(f"![{p.stem}]({p.name})\n\n" for p in images)
    )
    _write_pages(
        out,
        "report",
        title,
        md,
        f"<p>{html.escape(intro)}</p><h2>Accuracy matrix</h2>{_md_to_html_table(matrix)}"
        f"<h2>Summary</h2>{_md_to_html_table(table)}{_embed(images)}",
    )


# ---- several sequences side by side ----------------------------------------------------------------------


def is_continual_run(path: Path) -> bool:
    summary = path / "summary.json"
    return summary.exists() and "accuracy_matrix" in json.loads(summary.read_text(encoding="utf-8"))


COMPARE_COLUMNS = (
    "run",
    "method (strength)",
    "seeds",
    "average acc",
    "mean forgetting",
    "BWT",
    "FWT",
    "learning R[j][j]",
    "learning gap",
    "probe-recovered (task 1)",
    "ΔMLM",
    "s / stage",
    "trainable params",
)


def compare_rows(names: list[str], summaries: list[dict]) -> list[list[str]]:
    rows = []
    for name, s in zip(names, summaries):
        seconds = s.get("seconds_per_stage") or [0]
        rows.append(
            [
                name,
                s["strength"],
                str(len(s.get("seeds", [1]))),
                _field(s, "average_accuracy"),
                _field(s, "mean_forgetting"),
                _field(s, "bwt"),
                _field(s, "fwt"),
                _field(s, "mean_learning_accuracy"),
                _field(s, "mean_learning_gap"),
                _field(s, "probe_recovered_accuracy", 0),
                _field(s, "delta_mlm"),
                f"{sum(seconds) / len(seconds):.0f}",
                f"{int(s['trainable_parameters']):,}",
            ]
        )
    return rows


def plot_tradeoff(names: list[str], summaries: list[dict], path: Path) -> Path:
    """Learning (mean R[j][j]) against forgetting (mean over the earlier tasks): one point per run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, s in zip(names, summaries):
        ax.errorbar(
            s["mean_learning_accuracy"],
            s["mean_forgetting"],
            xerr=s.get("mean_learning_accuracy_std"),
            yerr=s.get("mean_forgetting_std"),
            marker="o",
            capsize=2,
            label=name,
        )
        ax.annotate(
            name,
            (s["mean_learning_accuracy"], s["mean_forgetting"]),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set(
        title="learning vs forgetting (better: right and low)",
        xlabel="learning: mean accuracy right after each task",
        ylabel="forgetting: mean drop of the earlier tasks",
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def compare_continual(paths: list[Path], names: list[str], out: Path) -> str:
    summaries = [json.loads((p / "summary.json").read_text(encoding="utf-8")) for p in paths]
    task_lists = {tuple(s["tasks"]) for s in summaries}
    if len(task_lists) > 1:
        raise UserError("these continual runs trained different task sequences; compare runs of one sequence")
    out.mkdir(parents=True, exist_ok=True)
    rows = compare_rows(names, summaries)
    table = "\n".join(
        ["| " + " | ".join(COMPARE_COLUMNS) + " |", "|" + "---|" * len(COMPARE_COLUMNS)]
        + ["| " + " | ".join(r) + " |" for r in rows]
    )
    image = plot_tradeoff(names, summaries, out / "tradeoff.png")
    md = (
        f"# Continual-learning runs compared\n\nTasks: {', '.join(summaries[0]['tasks'])}. Mean ± std over seeds.\n\n"
        f"{table}\n\n![learning vs forgetting](tradeoff.png)\n"
    )
    _write_pages(
        out,
        "compare",
        "Continual-learning runs compared",
        md,
        f"<p>Tasks: {html.escape(', '.join(summaries[0]['tasks']))}</p>{_md_to_html_table(table)}{_embed([image])}",
    )
    return table
