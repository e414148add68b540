"""What the Runs tab shows for a loaded run: its summary.json, its learning curves and, for a study
trial, the study's report. Everything is read from the run directory and inlined (SVG, srcdoc), so the
page fetches no file at all."""

from __future__ import annotations

import html
import json
from pathlib import Path

from masklab.report.pages import html_table, svg_text
from masklab.report.plots import _pyplot

CURVE_WORDS = ("loss", "accuracy", "perplexity")  # logged figures worth a curve; rates, seconds and counts are not


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
    return [r for r in records if isinstance(r, dict)]


def curves(records: list[dict]) -> dict[str, tuple[list[float], list[float]]]:
    """{figure: (steps, values)} for every numeric figure named like a loss, accuracy or perplexity."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for record in records:
        step = record.get("step")
        if not isinstance(step, (int, float)):
            continue
        for key, value in record.items():
            if (
                key != "step"
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
                and any(word in key for word in CURVE_WORDS)
            ):
                out.setdefault(key, ([], []))
                out[key][0].append(step)
                out[key][1].append(value)
    return out


def curves_svg(records: list[dict]) -> str:
    """Inline SVG: one panel per figure against steps ("" when the run logged none)."""

    found = curves(records)
    if not found:
        return ""
    plt = _pyplot()
    keys = sorted(found, key=lambda k: (k != "loss", k))[:6]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        steps, values = found[key]
        ax.plot(steps, values, marker="." if len(steps) < 30 else None)
        ax.set(title=key, xlabel="step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    text = svg_text(fig)
    plt.close(fig)
    return text


def _flat(summary: dict, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flat(value, name + ".")
        elif isinstance(value, float):
            rows.append((name, f"{value:,.4g}"))
        elif isinstance(value, (int, str, bool)) or value is None:
            rows.append((name, str(value)))
        else:
            rows.append((name, json.dumps(value)[:120]))
    return rows


def study_of(run: Path) -> Path | None:
    """The study directory a trial belongs to (STUDY/trials/KEY), if it is one."""
    return run.parent.parent if run.parent.name == "trials" and (run.parent.parent / "report.html").exists() else None


def run_page(run) -> str:
    """The Runs tab's HTML for one LoadedRun."""
    directory = run.run
    parts = [
        f"<p><code>{html.escape(str(directory))}</code> · {run.family}"
        f" · {sum(p.numel() for p in run.model.parameters()):,} parameters</p>"
    ]
    if run.notice:
        parts.append(f"<p class='ml-notice'>{html.escape(run.notice)}</p>")
    summary_path = directory / "summary.json"
    if summary_path.exists():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
            parts.append(
                "<h4>summary.json</h4><div class='ml-summary'>"
                + html_table(["figure", "value"], [list(r) for r in _flat(summary)])
                + "</div>"
            )
        except json.JSONDecodeError:
            parts.append("<p>summary.json is unreadable (cut short?)</p>")
    else:
        parts.append("<p>no summary.json: the run has not finished (or this is a bare checkpoint)</p>")
    svg = curves_svg(read_records(directory / "metrics.jsonl"))
    if svg:
        parts.append("<h4>learning curves</h4><div class='ml-curves'>" + svg + "</div>")
    study = study_of(directory) or (directory if (directory / "report.html").exists() else None)
    if study is not None:
        report = (study / "report.html").read_text(encoding="utf-8")
        parts.append(
            f"<h4>study report ({html.escape(study.name)})</h4>"
            f"<iframe class='ml-report' sandbox srcdoc=\"{html.escape(report, quote=True)}\"></iframe>"
        )
    return "".join(parts)
