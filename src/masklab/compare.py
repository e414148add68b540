"""Fine-tuning runs side by side: a table, overlay plots, and one self-contained HTML page.

`masklab compare RUN_DIR...` writes `compare.md` (the table + image links), `curves.png` (training
loss and validation accuracy over steps), `layers.png` (per-layer relative weight change and CKA with
the start) and `compare.html` (table and images embedded as base64). A run directory is what
`masklab finetune` wrote: a top directory over seeds, or a single `seed-N/` directory.
"""

from __future__ import annotations

import base64
import html
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from masklab.errors import UserError


@dataclass
class Run:
    name: str
    path: Path
    summary: dict
    seed_logs: list[list[dict]]  # metrics.jsonl records, one list per seed


def load_run(path: str | Path, name: str = "") -> Run:
    path = Path(path)
    summary_file = path / "summary.json"
    if not summary_file.exists():
        raise UserError(f"{path} is not a finished fine-tuning run (no summary.json); pass directories written by masklab finetune")
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    if "test_accuracy" not in summary or "layers" not in summary:
        raise UserError(f"{summary_file} is not a fine-tuning summary; pass directories written by masklab finetune")
    seed_dirs = [path / r for r in summary.get("runs", [])] or [path]
    logs = [[json.loads(line) for line in (d / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
            for d in seed_dirs if (d / "metrics.jsonl").exists()]
    return Run(name or path.name, path, summary, logs)


def _names(paths: list[Path]) -> list[str]:
    """Directory names, with the parent added where two runs would otherwise share a name."""
    names = [p.name for p in paths]
    return [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]


def _curve(run: Run, key: str) -> tuple[list[int], list[float], list[float]]:
    """(steps, mean, std) of `key` over the seeds, at the steps every seed logged."""
    by_step: dict[int, list[float]] = {}
    for log in run.seed_logs:
        for record in log:
            if key in record:
                by_step.setdefault(record["step"], []).append(record[key])
    steps = sorted(s for s, v in by_step.items() if len(v) == len(run.seed_logs))
    means = [statistics.fmean(by_step[s]) for s in steps]
    stds = [statistics.stdev(by_step[s]) if len(by_step[s]) > 1 else 0.0 for s in steps]
    return steps, means, stds


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(runs: list[Run], path: Path) -> Path:
    """Training loss and validation accuracy against steps; bands are ± one std over seeds."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        for ax, key in zip(axes, ("loss", "val_accuracy")):
            steps, mean, std = _curve(run, key)
            line, = ax.plot(steps, mean, label=run.name, marker="." if key != "loss" else None)
            ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                            color=line.get_color(), alpha=0.2)
    axes[0].set(title="training loss", xlabel="step", ylabel="cross-entropy")
    axes[1].set(title="validation accuracy", xlabel="step", ylabel="accuracy")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _layer_axis(runs: list[Run]) -> list[str]:
    deepest = max(runs, key=lambda r: len(r.summary["layers"]["weight_change"]))
    return list(deepest.summary["layers"]["weight_change"])


def plot_layers(runs: list[Run], path: Path) -> Path:
    """Per layer: relative weight change ||W - W0|| / ||W0|| (bars) and CKA(start, fine-tuned) (lines)."""
    plt = _pyplot()
    axis = _layer_axis(runs)
    labels = ["emb" if n == "embeddings" else n.replace("layer_", "L") for n in axis]
    fig, (ax_w, ax_c) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(runs)
    for k, run in enumerate(runs):
        layers = run.summary["layers"]
        xs = [i for i, n in enumerate(axis) if n in layers["weight_change"]]
        change = [layers["weight_change"][axis[i]] for i in xs]
        err = [layers.get("weight_change_std", {}).get(axis[i], 0.0) for i in xs]
        ax_w.bar([x - 0.4 + width * (k + 0.5) for x in xs], change, width, yerr=err, label=run.name, capsize=2)
        ax_c.errorbar(xs, [layers["cka"][axis[i]] for i in xs], yerr=[layers.get("cka_std", {}).get(axis[i], 0.0) for i in xs],
                      marker="o", label=run.name, capsize=2)
    ax_w.set(title="relative weight change ||W - W0|| / ||W0||", xlabel="layer (bottom to top)")
    ax_w.set_ylim(bottom=0)  # a change is >= 0; the std whiskers of near-zero bars would otherwise dip below
    ax_c.set(title="linear CKA(start, fine-tuned) on validation tokens", xlabel="layer (bottom to top)", ylim=(0, 1.05))
    for ax in (ax_w, ax_c):
        ax.set_xticks(range(len(axis)), labels)
        ax.grid(alpha=0.3, axis="y")
    ax_c.legend(fontsize=8)  # one legend: both panels use the same colour per run
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---- the table --------------------------------------------------------------------------------------------------

def _pm(summary: dict, key: str, digits: int = 3) -> str:
    value, std = summary[key], summary.get(f"{key}_std")
    return f"{value:.{digits}f} ± {std:.{digits}f}" if std is not None and len(summary.get("seeds", [])) > 1 else f"{value:.{digits}f}"


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


COLUMNS = ("run", "init", "mode", "seeds", "test acc", "test macro-F1", "majority acc", "best val step", "train s", "wall s",
           "trainable params", "most-changed layer")


def table_rows(runs: list[Run]) -> list[list[str]]:
    rows = []
    for run in runs:
        s = run.summary
        mode = f"top-{s['top_k']}" if s["mode"] == "top-k" else s["mode"]
        mode += f", llrd {s['llrd']:g}" if s.get("llrd", 1.0) != 1.0 else ""
        rows.append([run.name, init_label(s), mode, str(len(s.get("seeds", [s.get("seed")]))), _pm(s, "test_accuracy"),
                     _pm(s, "test_macro_f1"), f"{s['majority_accuracy']:.3f}", _pm(s, "best_val_step", 0),
                     _pm(s, "train_seconds", 0), _pm(s, "wall_seconds", 0), f"{int(s['trainable_parameters']):,}", most_changed(s)])
    return rows


def markdown_table(runs: list[Run]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(runs)]
    return "\n".join(lines)


def _html_page(runs: list[Run], images: list[Path]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in table_rows(runs))
    figures = "".join(f'<figure><img alt="{p.stem}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
                      f"<figcaption>{p.stem}</figcaption></figure>" for p in images)
    tasks = ", ".join(sorted({r.summary["task"] for r in runs}))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>masklab compare</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}</style>"
            f"</head><body><h1>Fine-tuning runs compared</h1><p>task: {html.escape(tasks)}; test metrics are of the "
            "best-validation checkpoint, mean ± std over seeds</p>"
            f"<table><tr>{head}</tr>{body}</table>{figures}</body></html>")


def compare_runs(paths: list[str | Path], out: Path) -> str:
    """Write compare.md, curves.png, layers.png and compare.html into `out`; return the markdown table."""
    if not paths:
        raise UserError("compare needs at least one run directory written by masklab finetune")
    paths = [Path(p) for p in paths]
    runs = [load_run(p, n) for p, n in zip(paths, _names(paths))]
    out.mkdir(parents=True, exist_ok=True)
    images = [plot_curves(runs, out / "curves.png"), plot_layers(runs, out / "layers.png")]
    table = markdown_table(runs)
    md = (f"# Fine-tuning runs compared\n\n{table}\n\nTest metrics are of the best-validation checkpoint "
          "(mean ± std over seeds). Most-changed layer: largest ||W - W0|| / ||W0||.\n\n"
          "![learning curves](curves.png)\n\n![per-layer change](layers.png)\n")
    (out / "compare.md").write_text(md, encoding="utf-8")
    (out / "compare.html").write_text(_html_page(runs, images), encoding="utf-8")
    return table
