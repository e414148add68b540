"""A study's report: report.md, one self-contained report.html (inline SVG) and results.csv.

Rewritten after every finished trial (so a long study can be read while it runs) and at the end.
Tables give mean ± sd over seeds with a 95% interval, and paired comparisons against the baseline
point; plots show the metric per point with every seed, learning curves against tokens (± sd bands),
and for searches the best-so-far curve and optuna's parameter importances.
"""

from __future__ import annotations

import html
import json
import statistics
import warnings
from pathlib import Path

import optuna

from masklab.fsutil import write_text_atomic as write_atomic
from masklab.report.pages import html_table, markdown_table, page, svg_text
from masklab.report.plots import _pyplot
from masklab.study.finding import block_baseline, blocking_keys, blocks, finding, fmt, label, settle_command, verdict
from masklab.study.queue import stored_seeds
from masklab.study.results import PointResult, Row, by_point, rows, varying_keys, write_csv
from masklab.study.spec import LABEL, StudySpec
from masklab.study.stats import paired, spread

MAX_CURVES = 8  # learning-curve lines per plot; more become unreadable


def _pm(g: PointResult) -> tuple[str, str]:
    s = g.spread()
    return f"{fmt(s.mean)} ± {fmt(s.sd)}", (f"{fmt(s.low)} to {fmt(s.high)}" if s.n > 1 else "–")


def point_table(spec: StudySpec, groups: list[PointResult], keys: list[str]) -> tuple[list[str], list[list[str]]]:
    # each point is compared with the baseline of its own block (same task, same corpus), paired by seed
    base_of = {id(g): block_baseline(spec, points) for _, points in blocks(spec, groups, keys) for g in points}
    bases = [b for b in base_of.values() if b is not None]
    base = bases[0] if bases else None
    extra = [m for m in spec.metrics if m != spec.metric]
    header = "setting" if keys == [LABEL] else ", ".join(keys) or "point"
    columns = [header, "n", f"{spec.metric} mean ± sd", "95% CI", *(f"{m} mean ± sd" for m in extra)]
    if base is not None:
        blocking = blocking_keys(spec, keys)
        factor = [k for k in keys if k not in blocking] or keys
        where = f"{label(base.point, factor)}, same {', '.join(blocking)}" if blocking else label(base.point, keys)
        columns += [f"vs baseline ({where})", "its 95% CI", "wins"]
    out = []
    for g in groups:
        pm, ci = _pm(g)
        row = [label(g.point, keys, names=False), str(len(g.values)), pm, ci]
        for m in extra:
            values = list(g.series(m).values())
            row.append(
                f"{fmt(statistics.fmean(values))} ± {fmt(statistics.stdev(values) if len(values) > 1 else 0.0)}"
                if values
                else "–"
            )
        if base is not None:
            own = base_of[id(g)]
            p = paired(g.values, own.values, spec.goal) if own is not None and g is not own else None
            row += (
                [fmt(p.diff.mean), f"{fmt(p.diff.low)} to {fmt(p.diff.high)}" if p.n > 1 else "–", f"{p.wins}/{p.n}"]
                if p
                else ["baseline" if g is own else "–", "", ""]
            )
        out.append(row)
    return columns, out


def _numeric(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def plot_points(spec: StudySpec, groups: list[PointResult], keys: list[str]):
    """The metric against the first varying key, one line per setting of the others; dots are seeds,
    bars the 95% interval of the mean."""
    plt = _pyplot()
    axis, others = keys[0], keys[1:]
    xs_all = [g.point.get(axis) for g in groups]
    numeric = _numeric(xs_all)
    ticks = sorted(set(xs_all), key=lambda v: (str(type(v)), v)) if numeric else list(dict.fromkeys(map(str, xs_all)))
    fig, ax = plt.subplots(figsize=(7, 4))
    series: dict[str, list[PointResult]] = {}
    for g in groups:
        series.setdefault(label(g.point, others) if others else spec.metric, []).append(g)
    for n, (name, members) in enumerate(series.items()):
        members = sorted(members, key=lambda g: g.point.get(axis) if numeric else ticks.index(str(g.point.get(axis))))
        x = [g.point.get(axis) if numeric else ticks.index(str(g.point.get(axis))) for g in members]
        spreads = [g.spread() for g in members]
        offset = (n - (len(series) - 1) / 2) * (0.08 if not numeric else 0)
        line = ax.errorbar(
            [v + offset for v in x],
            [s.mean for s in spreads],
            yerr=[[s.mean - s.low for s in spreads], [s.high - s.mean for s in spreads]],
            marker="o",
            capsize=4,
            label=name,
        )
        for xv, g in zip(x, members):
            ax.scatter(
                [xv + offset] * len(g.values), list(g.values.values()), s=12, alpha=0.5, color=line[0].get_color()
            )
    if not numeric:
        ax.set_xticks(range(len(ticks)), ticks, rotation=20 if max(len(t) for t in ticks) > 8 else 0)
    ax.set(xlabel=axis, ylabel=spec.metric, title=f"{spec.metric} per point (dots: seeds; bars: 95% CI)")
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_tradeoff(spec: StudySpec, groups: list[PointResult], keys: list[str]):
    """Two metrics against each other (e.g. what a cure learns vs what it forgets): one dot per point,
    bars ± sd over seeds."""
    x_key, y_key = spec.tradeoff
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    drawn = 0
    for g in groups:
        xs, ys = g.series(x_key), g.series(y_key)
        if not xs or not ys:
            continue
        sx, sy = spread(list(xs.values())), spread(list(ys.values()))
        ax.errorbar([sx.mean], [sy.mean], xerr=[sx.sd], yerr=[sy.sd], marker="o", capsize=3)
        ax.annotate(
            label(g.point, keys, names=False), (sx.mean, sy.mean), fontsize=8, xytext=(4, 4), textcoords="offset points"
        )
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set(xlabel=x_key, ylabel=y_key, title=f"{y_key} against {x_key} (bars: ± sd over seeds)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_profiles(spec: StudySpec, groups: list[PointResult], keys: list[str]):
    """Each profile prefix (e.g. layers.weight_change) drawn over its sub-keys (the layers), one line per point."""
    plt = _pyplot()
    present = [
        p for p in spec.profiles if any(k.startswith(p + ".") for g in groups for r in g.results.values() for k in r)
    ]
    if not present:
        return None
    fig, axes = plt.subplots(1, len(present), figsize=(5.5 * len(present), 3.8), squeeze=False)
    for ax, prefix in zip(axes[0], present):
        for g in groups[:MAX_CURVES]:
            names = [k for k in next(iter(g.results.values()), {}) if k.startswith(prefix + ".")]
            if not names:
                continue
            means = [statistics.fmean(g.series(n).values()) for n in names]
            ax.plot([n[len(prefix) + 1 :] for n in names], means, marker="o", label=label(g.point, keys, names=False))
        ax.set(title=f"{prefix} (mean over seeds)", ylabel=prefix.split(".")[-1])
        ax.tick_params(axis="x", rotation=45, labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _curve_logs(study_dir: Path, key: str) -> list[list[dict]]:
    """metrics.jsonl of a trial (pretraining: in the trial; fine-tuning: in its seed directory)."""
    directory = study_dir / "trials" / key
    files = (
        [directory / "metrics.jsonl"]
        if (directory / "metrics.jsonl").exists()
        else sorted(directory.glob("seed-*/metrics.jsonl"))
    )
    logs = []
    for f in files:
        logs.append([json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()])
    return logs


def plot_curves(spec: StudySpec, groups: list[PointResult], all_rows: list[Row], keys: list[str], study_dir: Path):
    """Training loss and the validation metric against tokens, mean ± sd over seeds, for up to MAX_CURVES points."""
    wanted = spec.curves or ["loss", "val_" + spec.metric.split(".")[-1].removeprefix("test_")]
    keyed = {}
    for r in all_rows:
        if r.state == "complete":
            keyed.setdefault(json.dumps(r.point, sort_keys=True), []).append(r)
    data = {}
    for g in groups[:MAX_CURVES]:
        # the curves stored with each trial (a report on another machine has no trial directories); a trial
        # recorded before curves were stored is read from its directory
        rows = keyed.get(json.dumps(g.point, sort_keys=True), [])
        logs = [log for r in rows for log in (r.curves or _curve_logs(study_dir, r.key))]
        if logs:
            data[label(g.point, keys)] = logs
    present = [w for w in wanted if any(w in rec for logs in data.values() for log in logs for rec in log)]
    if not present:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(present), figsize=(5.5 * len(present), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], present):
        for name, logs in data.items():
            by_tokens: dict[int, list[float]] = {}
            for log in logs:
                for rec in log:
                    if metric in rec and "tokens" in rec:
                        by_tokens.setdefault(rec["tokens"], []).append(rec[metric])
            xs = sorted(t for t, v in by_tokens.items() if len(v) == len(logs))
            if not xs:
                continue
            mean = [statistics.fmean(by_tokens[t]) for t in xs]
            sd = [statistics.stdev(by_tokens[t]) if len(by_tokens[t]) > 1 else 0.0 for t in xs]
            (line,) = ax.plot(xs, mean, label=name, marker="." if metric != "loss" else None)
            ax.fill_between(
                xs,
                [m - s for m, s in zip(mean, sd)],
                [m + s for m, s in zip(mean, sd)],
                color=line.get_color(),
                alpha=0.2,
            )
        ax.set(xlabel="training tokens", ylabel=metric, title=f"{metric} (band: ± sd over seeds)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_search(spec: StudySpec, study, all_rows: list[Row]):
    """Best value so far against trial number, and optuna's parameter importances (its default evaluator)."""
    plt = _pyplot()
    done = sorted((r for r in all_rows if r.state == "complete"), key=lambda r: r.number)
    if not done:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    best, curve = None, []
    for r in done:
        best = r.value if best is None else (max if spec.goal == "maximize" else min)(best, r.value)
        curve.append(best)
    axes[0].plot([r.number for r in done], [r.value for r in done], "o", alpha=0.4, label="trial")
    axes[0].step([r.number for r in done], curve, where="post", label="best so far")
    axes[0].set(xlabel="trial", ylabel=spec.metric, title="search progress")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    importances = search_importances(study)
    if importances:
        names = list(importances)[::-1]
        axes[1].barh(names, [importances[n] for n in names])
        axes[1].set(title="parameter importance (optuna)", xlabel="importance (sums to 1)")
    else:
        axes[1].set_axis_off()
        axes[1].text(0.5, 0.5, "importances need more finished trials", ha="center", va="center")
    fig.tight_layout()
    return fig


def search_importances(study) -> dict[str, float]:
    try:
        with warnings.catch_warnings():  # "too few trials": the plot says so instead
            warnings.simplefilter("ignore")
            return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError, ZeroDivisionError):  # too few trials, or no parameter varies yet
        return {}


def write_study_report(spec: StudySpec, study_dir: Path, study) -> dict:
    """report.md, report.html, results.csv and plots/*.svg in the study directory; returns the headline."""
    spec = stored_seeds(study, spec)  # a worker whose study grew (--seeds) after it started reports all of it
    plt = _pyplot()
    all_rows = rows(study)
    write_csv(all_rows, study_dir / "results.csv")
    groups = by_point(spec, all_rows)
    keys = varying_keys(spec, groups) if groups else list(spec.grid or spec.search)
    counts: dict[str, int] = {}
    for r in all_rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    plots_dir = study_dir / "plots"
    plots_dir.mkdir(exist_ok=True)
    figures = []
    if groups:
        figures.append(("points", plot_points(spec, groups, keys), "The metric per point"))
        curves = plot_curves(spec, groups, all_rows, keys, study_dir)
        if curves is not None:
            figures.append(("curves", curves, "Learning curves"))
        for name, make, title in (
            ("tradeoff", plot_tradeoff, "Trade-off"),
            ("profiles", plot_profiles, "Per-layer profiles"),
        ):
            if getattr(spec, name):
                fig = make(spec, groups, keys)
                if fig is not None:
                    figures.append((name, fig, title))
    if spec.is_search:
        search_fig = plot_search(spec, study, all_rows)
        if search_fig is not None:
            figures.append(("search", search_fig, "Search"))
    svgs = []
    for name, fig, title in figures:
        text = svg_text(fig, salt=f"{spec.name}/{name}")
        plt.close(fig)
        write_atomic(plots_dir / f"{name}.svg", text)
        svgs.append((name, title, text))
    columns, table_rows = point_table(spec, groups, keys)
    found = finding(spec, groups, keys)
    judged = verdict(spec, groups, keys)
    also = [v for v in (verdict(more, groups, keys) for more in spec.further_claims()) if v]
    settle = settle_command(spec, groups, keys)
    settle_tail = " (with this study's --out) keeps the finished trials and runs only the new seeds'."
    failures = [r for r in all_rows if r.state == "failed"]
    state_line = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trials yet"
    published_md = published_html = ""
    if spec.published:
        published_md = (
            f"\n**Published:** {spec.published.finding} ({spec.published.citation})\n"
            + (f"\n**{judged}**\n" if judged else "")
            + (f"\nTo settle it: `{settle}`{settle_tail}\n" if settle else "")
            + "".join(f"\n**Further claim:** {v}\n" for v in also)
        )
        published_html = (
            f"<p><b>Published:</b> {html.escape(spec.published.finding)} "
            f"({html.escape(spec.published.citation)})</p>"
            + (f"<p><b>{html.escape(judged)}</b></p>" if judged else "")
            + (f"<p>To settle it: <code>{html.escape(settle)}</code>{html.escape(settle_tail)}</p>" if settle else "")
            + "".join(f"<p><b>Further claim:</b> {html.escape(v)}</p>" for v in also)
        )
    setup = (
        f"run: {spec.run}; seeds {spec.seeds}; metric {spec.metric} ({spec.goal})"
        + (f"; scale {spec.scale}" if spec.scale else "")
        + (f"; search: {spec.trials} trials, {spec.sampler}" if spec.is_search else "")
    )
    fail_md = "".join(f"- trial {r.number} ({label(r.point, keys)}, seed {r.seed}): {r.error}\n" for r in failures)
    md = (
        f"# Study {spec.name}\n\n"
        + (f"{spec.question}\n\n" if spec.question else "")
        + f"{setup}. Trials: {state_line}.\n\n"
        "## Finding\n\n"
        + " ".join(found)
        + "\n"
        + published_md
        + "\n## Results\n\n"
        + (markdown_table(columns, table_rows) if table_rows else "No finished trial yet.")
        + "\n\nMean ± sample sd over seeds; 95% CI of the mean (Student t below 10 seeds); comparisons with the "
        "baseline are paired by seed.\n\n"
        + "".join(f"![{title}](plots/{name}.svg)\n\n" for name, title, _ in svgs)
        + (f"## Failed trials\n\n{fail_md}\n" if fail_md else "")
        + "Every trial: results.csv (one row per trial: parameters, seed, state and every number of its summary).\n"
    )
    write_atomic(study_dir / "report.md", md)
    body = (
        (f"<p>{html.escape(spec.question)}</p>" if spec.question else "")
        + f"<p>{html.escape(setup)}. Trials: {html.escape(state_line)}.</p>"
        + "<h2>Finding</h2><p>"
        + html.escape(" ".join(found))
        + "</p>"
        + published_html
        + "<h2>Results</h2>"
        + (html_table(columns, table_rows) if table_rows else "<p>No finished trial yet.</p>")
        + "<p>Mean ± sample sd over seeds; 95% CI of the mean (Student t below 10 seeds); comparisons with the "
        "baseline are paired by seed.</p>"
        + "".join(f"<h2>{html.escape(title)}</h2><figure>{text}</figure>" for _, title, text in svgs)
        + (
            "<h2>Failed trials</h2><ul>"
            + "".join(
                f"<li>trial {r.number} ({html.escape(label(r.point, keys))}, seed {r.seed}): "
                f"{html.escape(r.error)}</li>"
                for r in failures
            )
            + "</ul>"
            if failures
            else ""
        )
    )
    write_atomic(study_dir / "report.html", page(f"Study {spec.name}", body))
    return {"finding": found, "verdict": judged, "counts": counts, "table": (columns, table_rows)}
