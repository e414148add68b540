"""Fine-tuning runs side by side: a table, overlay plots, and one self-contained HTML page (pretraining
runs of any objective go to report/pretraining.py).

`masklab compare RUN_DIR...` writes `compare.md` (the table + image links), `curves.png` (training
loss and validation accuracy over steps), `layers.png` (per-layer relative weight change and CKA with
the start) and `compare.html` (table and images embedded as base64, so it works offline). A run
directory is what `masklab finetune` wrote: a top directory over seeds, or a single `seed-N/` directory.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from masklab.errors import UserError
from masklab.report.continual import compare_continual, is_continual_run
from masklab.report.plots import plot_curves, plot_layers
from masklab.report.pretraining import compare_pretraining, is_pretraining_run
from masklab.report.runs import Run, load_run, run_names


def _pm(summary: dict, key: str, digits: int = 3) -> str:
    value, std = summary[key], summary.get(f"{key}_std")
    return (
        f"{value:.{digits}f} ± {std:.{digits}f}"
        if std is not None and len(summary.get("seeds", [])) > 1
        else f"{value:.{digits}f}"
    )


def most_changed(summary: dict) -> str:
    change = summary["layers"]["weight_change"]
    top = max(change, key=change.get)
    return top if change[top] > 0 else "none (frozen)"


def init_label(summary: dict) -> str:
    """random (ARCH), builtin:NAME, or a checkpoint's directory name instead of its full path."""
    if summary["init"] == "random":
        return f"random ({init_label({'init': summary['arch']}) if summary.get('arch') else '?'})"
    if summary["init"].startswith("builtin:"):
        return summary["init"]
    path = Path(summary["init"])
    return path.parent.name if path.name == "checkpoint" else path.name


COLUMNS = (
    "run",
    "init",
    "mode",
    "seeds",
    "test acc",
    "test macro-F1",
    "majority acc",
    "best val step",
    "train s",
    "wall s",
    "trainable params",
    "most-changed layer",
)


def table_rows(runs: list[Run]) -> list[list[str]]:
    rows = []
    for run in runs:
        s = run.summary
        mode = f"top-{s['top_k']}" if s["mode"] == "top-k" else s["mode"]
        mode += f", llrd {s['llrd']:g}" if s.get("llrd", 1.0) != 1.0 else ""
        rows.append(
            [
                run.name,
                init_label(s),
                mode,
                str(len(s.get("seeds", [s.get("seed")]))),
                _pm(s, "test_accuracy"),
                _pm(s, "test_macro_f1"),
                f"{s['majority_accuracy']:.3f}",
                _pm(s, "best_val_step", 0),
                _pm(s, "train_seconds", 0),
                _pm(s, "wall_seconds", 0),
                f"{int(s['trainable_parameters']):,}",
                most_changed(s),
            ]
        )
    return rows


def markdown_table(runs: list[Run]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(runs)]
    return "\n".join(lines)


def _html_page(runs: list[Run], images: list[Path]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in table_rows(runs))
    figures = "".join(
        f'<figure><img alt="{p.stem}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        f"<figcaption>{p.stem}</figcaption></figure>"
        for p in images
    )
    tasks = ", ".join(sorted({r.summary["task"] for r in runs}))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>masklab compare</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}</style>"
        f"</head><body><h1>Fine-tuning runs compared</h1><p>task: {html.escape(tasks)}; test metrics are of the "
        "best-validation checkpoint, mean ± std over seeds</p>"
        f"<table><tr>{head}</tr>{body}</table>{figures}</body></html>"
    )


def compare_runs(paths: list[str | Path], out: Path) -> str:
    """Write compare.md, curves.png, layers.png and compare.html into `out`; return the markdown table."""
    if not paths:
        raise UserError("compare needs at least one run directory written by masklab finetune or masklab pretrain")
    paths = [Path(p) for p in paths]
    for kind, test, compare, advice in (
        ("continual", is_continual_run, compare_continual, "compare continual runs with each other"),
        (
            "pretraining",
            is_pretraining_run,
            compare_pretraining,
            "compare pretraining runs and fine-tuning runs separately",
        ),
    ):
        flags = [test(p) for p in paths]
        if any(flags):
            if not all(flags):
                raise UserError(f"{paths[flags.index(False)]} is not a {kind} run while others are; {advice}")
            return compare(paths, run_names(paths), out)
    runs = [load_run(p, n) for p, n in zip(paths, run_names(paths))]
    out.mkdir(parents=True, exist_ok=True)
    images = [plot_curves(runs, out / "curves.png"), plot_layers(runs, out / "layers.png")]
    table = markdown_table(runs)
    md = (
        f"# Fine-tuning runs compared\n\n{table}\n\nTest metrics are of the best-validation checkpoint "
        "(mean ± std over seeds). Most-changed layer: largest ||W - W0|| / ||W0||.\n\n"
        "![learning curves](curves.png)\n\n![per-layer change](layers.png)\n"
    )
    (out / "compare.md").write_text(md, encoding="utf-8")
    (out / "compare.html").write_text(_html_page(runs, images), encoding="utf-8")
    return table
