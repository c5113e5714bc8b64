"""Matplotlib figures of the evaluation (the caller saves them; use the Agg backend headless)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay

from epochstack.errors import ParameterError
from epochstack.evaluation.calibration import reliability_curves
from epochstack.evaluation.context import RAW, SPLITS, class_codes
from epochstack.evaluation.metrics import confusion_counts
from epochstack.models.labels import proba_columns


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


# --- the evaluation's figures -------------------------------------------------------------------


def confusion_pairs(decisions: pd.DataFrame, reference: str) -> pd.DataFrame:
    """``actual, predicted`` of the reference model's raw test predictions (for ``dvc plots``)."""
    rows = decisions[(decisions["model"] == reference) & (decisions["split"] == "test")]
    return pd.DataFrame(
        {"actual": rows["label"].to_numpy(), "predicted": rows["pred_none"].to_numpy()}
    )


def _hypnogram_rows(rows: pd.DataFrame, recording: str | None) -> pd.DataFrame:
    recordings = rows["recording_id"].unique()
    if recording is not None and recording not in recordings:
        raise ParameterError(
            "evaluation.plots.hypnogram_recording",
            f"{recording!r} is not a test recording ({list(recordings)}).",
            "set a test recording_id or null.",
        )
    return rows[rows["recording_id"] == (recording or recordings[0])]


def _confusion_figures(ref_rows: pd.DataFrame, classes: list[str], reference: str) -> dict:
    figures = {}
    for split in SPLITS:
        rows = ref_rows[ref_rows["split"] == split]
        if not rows.empty:
            cm = confusion_counts(
                class_codes(rows, "label", classes),
                class_codes(rows, "pred_none", classes),
                len(classes),
            )
            figures[f"confusion_{split}.png"] = confusion_figure(
                cm, classes, f"{reference}, {split} (raw)"
            )
    return figures


def _test_figures(test_rows: pd.DataFrame, context: dict, metrics: dict, evaluation: dict) -> dict:
    """Reliability curves and the hypnogram of one test recording (reference model)."""
    classes, reference = context["classes"], context["reference_model"]
    y_true, proba = (
        class_codes(test_rows, "label", classes),
        test_rows[proba_columns(classes)].to_numpy(dtype=float),
    )
    curves = reliability_curves(y_true, proba, classes, evaluation["calibration"]["n_bins"])
    figures = {
        "reliability_test.png": reliability_figure(
            curves, metrics["test"]["ece_per_class"], f"{reference}, test: reliability"
        )
    }
    one = _hypnogram_rows(test_rows, evaluation["plots"]["hypnogram_recording"])
    predicted = {
        m: class_codes(one, f"pred_{m}", classes) for m in [RAW, *context["smoothing_methods"]]
    }
    figures["hypnogram_test.png"] = hypnogram_figure(
        one["t_start_s"].to_numpy() / 3600,
        class_codes(one, "label", classes),
        predicted,
        one[proba_columns(classes)].to_numpy(dtype=float),
        classes,
        f"{reference}, recording {one['recording_id'].iat[0]}",
    )
    return figures


def _model_comparison(metrics: dict) -> Figure:
    comparison = {
        name: {
            "test kappa": m.get("test", {}).get("cohen_kappa"),
            "test macro F1": m.get("test", {}).get("macro_f1"),
            "test kappa (HMM)": m.get("test", {})
            .get("smoothing", {})
            .get("hmm", {})
            .get("cohen_kappa"),
            "oof kappa": m.get("oof", {}).get("cohen_kappa"),
        }
        for name, m in metrics["models"].items()
    }
    return model_comparison_figure(
        pd.DataFrame(comparison).T.astype(float).dropna(axis=1, how="all"),
        "models compared (raw unless stated)",
    )


def _fa_curve(fa_curve: pd.DataFrame, context: dict, metrics: dict, fa_targets: list) -> Figure:
    frozen = {
        split: metrics[split]["events"]["at_fa"]
        for split in SPLITS
        if metrics.get(split, {}).get("events")
    }
    return fa_curve_figure(
        {split: c for split, c in fa_curve.groupby("split")},
        frozen,
        fa_targets,
        f"{context['reference_model']}: threshold sweep on P({context['positive_class']})",
    )


def evaluation_figures(
    decisions: pd.DataFrame,
    context: dict,
    metrics: dict,
    per_subject: pd.DataFrame,
    fa_curve: pd.DataFrame,
    evaluation: dict,
) -> dict[str, Figure]:
    """Figures by file name: confusion matrices, hypnogram, reliability, per-subject bars, model
    comparison, paired comparisons and (detection tasks) sensitivity vs FA/24h with the frozen
    operating points."""
    classes, reference = context["classes"], context["reference_model"]
    ref_rows = decisions[decisions["model"] == reference]
    figures = _confusion_figures(ref_rows, classes, reference)
    test_rows = ref_rows[ref_rows["split"] == "test"]
    if not test_rows.empty:
        figures |= _test_figures(test_rows, context, metrics, evaluation)
    subjects = per_subject[(per_subject["model"] == reference) & (per_subject["smoothing"] == RAW)]
    subjects = subjects.assign(subject_id=subjects["subject_id"] + " (" + subjects["split"] + ")")
    figures["per_subject.png"] = per_subject_figure(
        subjects, ["cohen_kappa", "macro_f1"], f"{reference}: per subject (raw)"
    )
    figures["model_comparison.png"] = _model_comparison(metrics)
    if metrics["comparisons"]:
        figures["paired_comparisons.png"] = paired_comparison_figure(
            metrics["comparisons"],
            f"paired differences over {' + '.join(metrics['info']['comparisons']['splits'])} subjects",
        )
    if not fa_curve.empty:
        figures["sensitivity_vs_fa.png"] = _fa_curve(
            fa_curve, context, metrics, evaluation["events"]["fa_targets"]
        )
    for figure in figures.values():
        figure.set_dpi(evaluation["plots"]["dpi"])
    return figures
