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
    ConfusionMatrixDisplay(cm, display_labels=classes).plot(ax=axes[0], cmap="Blues", colorbar=False, values_format="d")
    ConfusionMatrixDisplay(np.nan_to_num(normalised), display_labels=classes).plot(ax=axes[1], cmap="Blues", colorbar=False, values_format=".2f")
    axes[0].set_title("counts")
    axes[1].set_title("row-normalised")
    fig.suptitle(title)
    return fig


def hypnogram_figure(hours: np.ndarray, true: np.ndarray, predicted: dict[str, np.ndarray], proba: np.ndarray, classes: list[str], title: str) -> Figure:
    """True hypnogram against predicted ones (one line per smoothing), class probabilities beneath."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 5), sharex=True, height_ratios=[2, 1], layout="constrained")
    levels = np.arange(len(classes))
    top.step(hours, true, where="post", color="black", lw=1.6, label="true")
    for offset, (name, codes) in enumerate(predicted.items(), start=1):
        top.step(hours, codes + 0.08 * offset, where="post", lw=0.9, alpha=0.85, label=f"predicted ({name})")
    top.set_yticks(levels, classes)
    top.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    top.set_title(title)
    bottom.stackplot(hours, proba.T, labels=classes, step="post", alpha=0.85)
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("probability")
    bottom.set_xlabel("time (h)")
    bottom.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return fig


def reliability_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], ece: dict[str, float], title: str) -> Figure:
    """Reliability diagram: observed frequency against mean predicted probability, per class."""
    fig, ax = plt.subplots(figsize=(5.5, 5), layout="constrained")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    for name, (predicted, observed) in curves.items():
        ax.plot(predicted, observed, marker="o", label=f"{name} (ECE {ece[name]:.3f})")
    ax.set(xlabel="mean predicted probability", ylabel="observed frequency", xlim=(0, 1), ylim=(0, 1), title=title)
    ax.legend(fontsize="small")
    return fig


def fa_curve_figure(curves: dict[str, pd.DataFrame], fa_targets: list[float], title: str) -> Figure:
    """Sensitivity against false alarms per 24 h over a threshold sweep, one line per split."""
    fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
    for name, curve in curves.items():
        ordered = curve.sort_values("fa_per_24h")
        ax.plot(ordered["fa_per_24h"], ordered["sensitivity"], marker=".", label=name)
    for target in fa_targets:
        ax.axvline(target, color="grey", lw=0.8, ls=":")
    ax.set_xscale("symlog", linthresh=1)
    ax.set(xlabel="false alarms per 24 h", ylabel="sensitivity (any-overlap)", xlim=(0, None), ylim=(0, 1.02), title=title)
    ax.legend()
    return fig


def per_subject_figure(table: pd.DataFrame, metrics: list[str], title: str) -> Figure:
    """Grouped bars of per-subject metrics (rows of ``table``: subject_id and metric columns)."""
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(table) * len(metrics)), 4), layout="constrained")
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
