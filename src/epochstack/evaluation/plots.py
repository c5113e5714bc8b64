"""Matplotlib figures of the evaluation (the caller saves them; use the Agg backend headless)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay


def confusion_figure(cm: np.ndarray, classes: list[str], title: str) -> Figure:
    """Confusion matrix as counts and row-normalised (recall per true class), side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = cm / cm.sum(axis=1, keepdims=True)
    ConfusionMatrixDisplay(cm, display_labels=classes).plot(
        ax=axes[0], cmap="Blues", colorbar=False, values_format="d"
    )
    ConfusionMatrixDisplay(np.nan_to_num(normalised), display_labels=classes).plot(
        ax=axes[1], cmap="Blues", colorbar=False, values_format=".2f"
    )
    axes[0].set_title("counts")
    axes[1].set_title("row-normalised")
    fig.suptitle(title)
    return fig


def hypnogram_figure(
    hours: np.ndarray,
    true: np.ndarray,
    predicted: dict[str, np.ndarray],
    proba: np.ndarray,
    classes: list[str],
    title: str,
) -> Figure:
    """True hypnogram against predicted ones (one line per smoothing), class probabilities beneath."""
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(12, 5), sharex=True, height_ratios=[2, 1], layout="constrained"
    )
    levels = np.arange(len(classes))
    top.step(hours, true, where="post", color="black", lw=1.6, label="true")
    for offset, (name, codes) in enumerate(predicted.items(), start=1):
        top.step(
            hours,
            codes + 0.08 * offset,
            where="post",
            lw=0.9,
            alpha=0.85,
            label=f"predicted ({name})",
        )
    top.set_yticks(levels, classes)
    top.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    top.set_title(title)
    bottom.stackplot(hours, proba.T, labels=classes, step="post", alpha=0.85)
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("probability")
    bottom.set_xlabel("time (h)")
    bottom.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return fig


def reliability_figure(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], ece: dict[str, float], title: str
) -> Figure:
    """Reliability diagram: observed frequency against mean predicted probability, per class."""
    fig, ax = plt.subplots(figsize=(5.5, 5), layout="constrained")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    for name, (predicted, observed) in curves.items():
        ax.plot(predicted, observed, marker="o", label=f"{name} (ECE {ece[name]:.3f})")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed frequency",
        xlim=(0, 1),
        ylim=(0, 1),
        title=title,
    )
    ax.legend(fontsize="small")
    return fig


def fa_curve_figure(
    curves: dict[str, pd.DataFrame],
    frozen: dict[str, dict[str, dict]],
    fa_targets: list[float],
    title: str,
) -> Figure:
    """Sensitivity against false alarms per 24 h over a threshold sweep, one line per split, with
    the operating points chosen on OOF (``frozen[split][target]``: sensitivity, fa_per_24h) marked
    where they land on each split. The test line is a diagnostic: nothing is chosen on it."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
    for name, curve in curves.items():
        ordered = curve.sort_values("fa_per_24h")
        line = ax.plot(
            ordered["fa_per_24h"],
            ordered["sensitivity"],
            marker=".",
            alpha=0.6,
            label=f"{name} sweep" + (" (diagnostic)" if name == "test" else ""),
        )[0]
        points = pd.DataFrame(frozen.get(name, {})).T
        if not points.empty:
            ax.plot(
                points["fa_per_24h"].astype(float),
                points["sensitivity"].astype(float),
                ls="none",
                marker="D",
                ms=7,
                color=line.get_color(),
                markeredgecolor="black",
                label=f"{name}: thresholds frozen from OOF",
            )
    for target in fa_targets:
        ax.axvline(target, color="grey", lw=0.8, ls=":")
    ax.set_xscale("symlog", linthresh=1)
    ax.set(
        xlabel="false alarms per 24 h (scored time)",
        ylabel="sensitivity (any-overlap)",
        xlim=(0, None),
        ylim=(0, 1.02),
        title=title,
    )
    ax.legend(fontsize="small")
    return fig


def per_subject_figure(table: pd.DataFrame, metrics: list[str], title: str) -> Figure:
    """Grouped bars of per-subject metrics (rows of ``table``: subject_id and metric columns)."""
    fig, ax = plt.subplots(
        figsize=(max(6, 0.6 * len(table) * len(metrics)), 4), layout="constrained"
    )
    table.set_index("subject_id")[metrics].plot.bar(ax=ax, rot=0)
    ax.set(ylim=(min(0, table[metrics].min().min()), 1), ylabel="score", title=title)
    ax.legend(fontsize="small", loc="lower right")
    return fig


def model_comparison_figure(table: pd.DataFrame, title: str) -> Figure:
    """Grouped bars: one group per model (index), one bar per column (e.g. test kappa, macro F1)."""
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(table)), 4), layout="constrained")
    table.plot.bar(ax=ax, rot=0)
    ax.set(ylim=(0, 1), ylabel="score", title=title)
    ax.legend(fontsize="small", loc="lower right")
    return fig


def paired_comparison_figure(comparisons: dict[str, dict[str, dict]], title: str) -> Figure:
    """Paired differences (model a - model b) per comparison and metric, with their bootstrap
    interval where there is one (a bare marker where there are too few subjects)."""
    rows = [
        (pair, metric, c)
        for pair, by_metric in comparisons.items()
        for metric, c in by_metric.items()
    ]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.5), layout="constrained")
    for y, (_, metric, c) in enumerate(rows):
        low, high = c.get("ci_low"), c.get("ci_high")
        if low is not None and high is not None:
            ax.plot([low, high], [y, y], color="black", lw=1.5)
        ax.plot(
            [c["delta"]],
            [y],
            marker="o",
            color="tab:blue" if metric == rows[0][1] else "tab:orange",
        )
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(
        range(len(rows)), [f"{pair.replace('_vs_', ' - ')} ({metric})" for pair, metric, _ in rows]
    )
    ax.invert_yaxis()
    ax.set(xlabel="difference (a - b), pooled over subjects", title=title)
    return fig
