"""Pretraining runs of any objective side by side: the yardstick table, learning curves, a plain reading.

`masklab compare RUN...` with pretraining run directories writes `compare.md`, `curves.png` (training
loss against tokens and against seconds) and `compare.html` (self-contained). Runs whose configs differ
only in `train.seed` are one row, reported as mean ± std over seeds. The yardsticks come from each
run's `evaluation.json` (`masklab evaluate RUN --pairs ... --cloze N --generate N --downstream TASK`);
a yardstick no run of a row has is shown as "-".
"""

from __future__ import annotations

import base64
import html
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from masklab.errors import UserError
from masklab.objective_records import record
from masklab.report.pages import html_table, markdown_table
from masklab.report.plots import _pyplot

# (column, key in summary/evaluation, digits, higher is better?)
YARDSTICKS = [
    ("minimal pairs", "minimal_pair_accuracy", 3, True),
    ("cloze (5-way)", "cloze_accuracy", 3, True),
    ("probe acc", "downstream_probe_accuracy", 3, True),
    ("full FT acc", "downstream_full_accuracy", 3, True),
    ("distinct-2", "distinct_2", 3, True),
    ("rep-4", "repetition_4", 3, False),
    ("tokens/s", "tokens_per_second", 0, True),
    ("train s", "train_seconds", 0, False),
]
# `masklab generate --evaluate` figures, per strategy@steps (evaluation.json "generation")
GENERATION = [
    ("judge ppl", "judge_perplexity", 1),
    ("entropy", "unigram_entropy", 2),
    ("distinct-2", "distinct_2", 3),
    ("rep-4", "repetition_4", 3),
    ("self-BLEU", "self_bleu", 1),
    ("tokens/s", "tokens_per_second", 0),
]


@dataclass
class PretrainRun:
    name: str
    path: Path
    figures: dict  # summary.json, then evaluation.json on top
    config: dict
    log: list[dict]


@dataclass
class Group:
    label: str
    runs: list[PretrainRun] = field(default_factory=list)

    def values(self, key: str) -> list[float]:
        return [r.figures[key] for r in self.runs if isinstance(r.figures.get(key), (int, float))]

    def mean(self, key: str) -> float | None:
        values = self.values(key)
        return statistics.fmean(values) if values else None

    def cell(self, key: str, digits: int) -> str:
        values = self.values(key)
        if not values:
            return "-"
        if len(values) < len(self.runs):  # say so when only some seeds have the figure
            return f"{self.cell_of(values, digits)} (n={len(values)})"
        return self.cell_of(values, digits)

    @staticmethod
    def cell_of(values: list[float], digits: int) -> str:
        mean = statistics.fmean(values)
        if len(values) == 1 or len(set(values)) == 1:
            return f"{mean:,.{digits}f}"
        return f"{mean:,.{digits}f} ± {statistics.stdev(values):,.{digits}f}"


def is_pretraining_run(path: Path) -> bool:
    summary = path / "summary.json"
    return summary.exists() and "objective" in json.loads(summary.read_text(encoding="utf-8"))


def load_pretraining_run(path: Path, name: str) -> PretrainRun:
    if not is_pretraining_run(path):
        raise UserError(f"{path} is not a finished masklab pretraining run (no summary.json with an objective)")
    figures = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    if (path / "evaluation.json").exists():
        figures.update(json.loads((path / "evaluation.json").read_text(encoding="utf-8")))
    config = (
        yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) if (path / "config.yaml").exists() else {}
    )
    log = (
        [json.loads(line) for line in (path / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
        if (path / "metrics.jsonl").exists()
        else []
    )
    return PretrainRun(name, path, figures, config, log)


def group_runs(runs: list[PretrainRun]) -> list[Group]:
    """Runs whose configs are equal apart from train.seed form one group, named by objective and model."""
    groups: dict[str, Group] = {}
    for run in runs:
        config = json.loads(json.dumps(run.config))
        config.get("train", {}).pop("seed", None)
        key = json.dumps(config, sort_keys=True)
        if key not in groups:
            preset = run.config.get("model", {}).get("preset", "?")
            groups[key] = Group(f"{run.figures['objective']} ({run.figures.get('architecture', '?')}, {preset})")
        groups[key].runs.append(run)
    labels = [g.label for g in groups.values()]
    for g in groups.values():  # same objective and model but other settings: tell them apart
        if labels.count(g.label) > 1:
            g.label += f" [{g.runs[0].name}]"
    return list(groups.values())


def table(groups: list[Group]) -> tuple[list[str], list[list[str]]]:
    columns = [
        "objective (model, preset)",
        "seeds",
        "parameters",
        *[c for c, *_ in YARDSTICKS],
        "own figure (not comparable)",
    ]
    rows = []
    for g in groups:
        objective = g.runs[0].figures["objective"]
        own_name, own_key = record(objective).headline
        rows.append(
            [
                g.label,
                str(len(g.runs)),
                g.cell("parameters", 0),
                *[g.cell(key, d) for _, key, d, _ in YARDSTICKS],
                f"{own_name} {g.cell(own_key, 3)}",
            ]
        )
    return columns, rows


def reading(groups: list[Group]) -> list[str]:
    """Plain sentences: which row leads on each shared yardstick, and whether seed noise covers the gap."""
    lines = []
    for column, key, digits, higher in YARDSTICKS[:6]:
        scored = [(g.mean(key), g) for g in groups if g.mean(key) is not None]
        if len(scored) < 2:
            continue
        scored.sort(key=lambda t: t[0], reverse=higher)
        (best, top), (second, runner) = scored[0], scored[1]
        spread = max((statistics.stdev(v) for v in (top.values(key), runner.values(key)) if len(v) > 1), default=None)
        gap = abs(best - second)
        if gap == 0:
            lines.append(f"{column}: {top.label} and {runner.label} tie at {best:.{digits}f}.")
            continue
        verdict = (
            "within seed noise"
            if spread is not None and gap <= spread
            else "larger than the seed spread"
            if spread is not None
            else "one seed each: no seed spread to judge by"
        )
        lines.append(
            f"{column}: {top.label} leads ({best:.{digits}f} vs {second:.{digits}f} for {runner.label}; "
            f"the gap is {verdict})."
        )
    costs = [(g.mean("tokens_per_second"), g) for g in groups if g.mean("tokens_per_second")]
    if len(costs) > 1:
        costs.sort(key=lambda t: t[0], reverse=True)
        lines.append(
            f"Cost: {costs[0][1].label} trains fastest ({costs[0][0]:,.0f} tokens/s, "
            f"{costs[0][0] / costs[-1][0]:.1f}x {costs[-1][1].label})."
        )
    budgets = {round(g.mean("train_tokens") or 0) for g in groups}
    if len(budgets) > 1:
        lines.append("The rows trained on different token budgets: compare yardsticks with that in mind.")
    rates = masked_rates(groups)
    if len(set(rates.values())) > 1:
        listed = ", ".join(f"{label} {rate:g}" for label, rate in rates.items())
        lines.append(
            f"The masked figures were measured at different masking rates ({listed}): masked accuracy and "
            "pseudo-perplexity rise and fall with the rate, so they do not compare across these rows. Score every "
            "run on common masks first (`masklab evaluate RUN --set masking.rate=0.15`), as the studies do."
        )
    lines.append(
        "Perplexities and the 'own figure' column are each on their own objective's scale and do not compare "
        "across rows of different objectives; minimal pairs, cloze and downstream accuracy do."
    )
    return lines


def masked_rates(groups: list[Group]) -> dict[str, float]:
    """The masking rate each masked row's figures were measured at: an evaluation's own rate where
    `masklab evaluate` rescored the run, else the rate it trained with (its in-training figures)."""
    rates = {}
    for g in groups:
        run = g.runs[0]
        if not record(run.figures["objective"]).masks_tokens or "masked_accuracy" not in run.figures:
            continue
        rate = run.figures.get("masked_at_rate", run.config.get("masking", {}).get("rate"))
        if isinstance(rate, (int, float)):
            rates[g.label] = float(rate)
    return rates


def plot_pretraining_curves(groups: list[Group], path: Path) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for n, g in enumerate(groups):
        for k, run in enumerate(g.runs):
            points = [r for r in run.log if "loss" in r and "tokens" in r]
            kw = {"color": colours[n % len(colours)], "alpha": 0.8, "label": g.label if k == 0 else None}
            axes[0].plot([r["tokens"] for r in points], [r["loss"] for r in points], **kw)
            axes[1].plot([r.get("elapsed", 0.0) for r in points], [r["loss"] for r in points], **kw)
    for ax, xlabel in zip(axes, ("training tokens", "seconds")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("training loss (each objective's own)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def generation_table(groups: list[Group]) -> tuple[list[str], list[list[str]]]:
    """One row per group and generation setting (strategy@steps) that `masklab generate --evaluate` recorded."""
    columns = ["run", "generation", *[c for c, *_ in GENERATION]]
    rows = []
    for g in groups:
        settings = sorted({k for r in g.runs for k in (r.figures.get("generation") or {})})
        for setting in settings:
            entries = [
                r.figures["generation"][setting] for r in g.runs if setting in (r.figures.get("generation") or {})
            ]
            cells = []
            for _, key, digits in GENERATION:
                values = [e[key] for e in entries if isinstance(e.get(key), (int, float))]
                cells.append(Group.cell_of(values, digits) if values else "-")
            rows.append([g.label, setting, *cells])
    return columns, rows


def compare_pretraining(paths: list[Path], names: list[str], out: Path) -> str:
    groups = group_runs([load_pretraining_run(p, n) for p, n in zip(paths, names)])
    out.mkdir(parents=True, exist_ok=True)
    image = plot_pretraining_curves(groups, out / "curves.png")
    columns, rows = table(groups)
    md_table = markdown_table(columns, rows)
    gen_columns, gen_rows = generation_table(groups)
    generation_md = generation_html = ""
    if gen_rows:
        note = (
            "Samples of `masklab generate --evaluate`; judge perplexity only compares samples scored by the same judge."
        )
        generation_md = f"## Generation\n\n{markdown_table(gen_columns, gen_rows)}\n\n{note}\n\n"
        generation_html = f"<h2>Generation</h2>{html_table(gen_columns, gen_rows)}<p>{html.escape(note)}</p>"
    notes = reading(groups)
    md = (
        f"# Pretraining objectives compared\n\n{md_table}\n\n"
        "Mean ± std over seeds. Higher is better except rep-4 (repetition) and train s.\n\n"
        + generation_md
        + "## Reading\n\n"
        + "\n".join(f"- {line}" for line in notes)
        + "\n\n![learning curves](curves.png)\n"
    )
    (out / "compare.md").write_text(md, encoding="utf-8")
    picture = base64.b64encode(image.read_bytes()).decode()
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>masklab compare</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}</style>"
        f"</head><body><h1>Pretraining objectives compared</h1>{html_table(columns, rows)}"
        "<p>Mean ± std over seeds. Higher is better except rep-4 and train s.</p>"
        + generation_html
        + "<h2>Reading</h2><ul>"
        + "".join(f"<li>{html.escape(line)}</li>" for line in notes)
        + f"</ul><img alt='learning curves' src='data:image/png;base64,{picture}'></body></html>"
    )
    (out / "compare.html").write_text(page, encoding="utf-8")
    return md_table
