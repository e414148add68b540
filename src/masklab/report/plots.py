"""Plots shared by the reports: learning curves over seeds and per-layer change, as PNG files.

Bands and error bars are ± one standard deviation over seeds.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

from masklab.report.runs import Run


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

    matplotlib.use("Agg")

    return plt


def plot_curves(runs: list[Run], path: Path) -> Path:
    """Training loss and validation accuracy against steps; bands are ± one std over seeds."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        for ax, key in zip(axes, ("loss", "val_accuracy")):
            steps, mean, std = _curve(run, key)
            (line,) = ax.plot(steps, mean, label=run.name, marker="." if key != "loss" else None)
            ax.fill_between(
                steps,
                [m - s for m, s in zip(mean, std)],
                [m + s for m, s in zip(mean, std)],
                color=line.get_color(),
                alpha=0.2,
            )
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
        ax_c.errorbar(
            xs,
            [layers["cka"][axis[i]] for i in xs],
            yerr=[layers.get("cka_std", {}).get(axis[i], 0.0) for i in xs],
            marker="o",
            label=run.name,
            capsize=2,
        )
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
