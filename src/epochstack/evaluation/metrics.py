"""Epoch-level classification metrics, per-subject tables and subject-bootstrap intervals.

Point estimates come from scikit-learn. Bootstrap replicates and per-subject tables are computed
from confusion matrices instead (:func:`scores_from_confusion`), vectorised over replicates, so a
thousand replicates cost one matrix product rather than a thousand scikit-learn calls.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from epochstack.errors import InputDataError
from epochstack.evaluation.calibration import ece_per_class

# Scores that bootstrap replicates and per-subject tables carry (see scores_from_confusion).
CONFUSION_SCORES = ("accuracy", "balanced_accuracy", "macro_f1", "cohen_kappa")


def label_indices(labels, classes: list[str], source: str = "label") -> np.ndarray:
    """Integer codes of ``labels`` in ``classes`` order; unknown labels are an error."""
    codes = pd.Categorical(np.asarray(labels, dtype=object), categories=classes).codes
    if (codes < 0).any():
        unknown = sorted({str(v) for v, c in zip(labels, codes, strict=True) if c < 0})
        raise InputDataError(
            source,
            f"labels {unknown} are not among the classes {classes}.",
            "predict with the class list of the epoch table.",
        )
    return codes.astype(np.int64)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix ``(n_classes, n_classes)``: rows true class, columns predicted class."""
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def scores_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy, macro F1, Cohen's kappa and per-class F1 from confusion matrices.

    ``cm`` has shape ``(..., K, K)``; every score has the leading shape. Definitions match
    scikit-learn: balanced accuracy averages recall over classes present in the truth, macro F1
    averages F1 over classes present in the truth or the prediction.
    """
    cm = np.asarray(cm, dtype=float)
    total = cm.sum(axis=(-2, -1))
    hits = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(axis=-1)
    predicted = cm.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, hits / support, 0.0)
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        present = support > 0
        seen = present | (predicted > 0)
        accuracy = hits.sum(axis=-1) / total
        balanced = (recall * present).sum(axis=-1) / present.sum(axis=-1)
        macro_f1 = (f1 * seen).sum(axis=-1) / seen.sum(axis=-1)
        chance = (support * predicted).sum(axis=-1) / total**2
        kappa = np.where(chance < 1, (accuracy - chance) / (1 - chance), np.nan)
    return {
        "accuracy": accuracy,
        "balanced_accuracy": balanced,
        "macro_f1": macro_f1,
        "cohen_kappa": kappa,
        "f1": f1,
    }


def label_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """Metrics of hard decisions (integer codes): accuracy, balanced accuracy, macro F1, kappa, per-class P/R/F1.

    One scorer: everything comes from the confusion matrix through :func:`scores_from_confusion`
    (the definitions of scikit-learn's scorers, checked against them in the tests), so headline
    numbers, per-subject tables, bootstrap replicates and paired comparisons cannot disagree.
    """
    cm = confusion_counts(y_true, y_pred, len(classes))
    scores = scores_from_confusion(cm)
    support, predicted, hits = cm.sum(axis=1), cm.sum(axis=0), np.diagonal(cm)
    precision = np.divide(hits, predicted, out=np.zeros(len(classes)), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros(len(classes)), where=support > 0)
    return {
        "n_epochs": len(y_true),
        **{name: float(scores[name]) for name in CONFUSION_SCORES},
        "precision_per_class": dict(zip(classes, precision.tolist(), strict=True)),
        "recall_per_class": dict(zip(classes, recall.tolist(), strict=True)),
        "f1_per_class": dict(zip(classes, scores["f1"].tolist(), strict=True)),
        "support_per_class": dict(zip(classes, support.astype(int).tolist(), strict=True)),
    }


def probability_metrics(
    y_true: np.ndarray, proba: np.ndarray, classes: list[str], n_bins: int = 10
) -> dict:
    """One-vs-rest AUROC per class, log loss, Brier score and ECE per class of ``proba`` (n, K).

    AUROC of a class absent from (or alone in) ``y_true`` is undefined: NaN. Rows are
    renormalised to sum to 1 (float32 networks are off by ~1e-7, which scikit-learn warns about);
    rows off by more than 1e-3 are an error, not rounding.
    """
    totals = proba.sum(axis=1, keepdims=True)
    if len(proba) and np.abs(totals - 1).max() > 1e-3:
        raise InputDataError(
            "model_predictions",
            f"class probabilities sum to {float(totals.min()):.4f}..{float(totals.max()):.4f}, not 1.",
            "write probabilities (softmax outputs), one column per class.",
        )
    proba = proba / totals
    labels = np.arange(len(classes))
    onehot = y_true[:, None] == labels[None, :]
    auroc = {
        c: float(roc_auc_score(onehot[:, k], proba[:, k]))
        if 0 < onehot[:, k].sum() < len(y_true)
        else float("nan")
        for k, c in enumerate(classes)
    }
    defined = [v for v in auroc.values() if np.isfinite(v)]
    return {
        "auroc_per_class": auroc,
        "macro_auroc": float(np.mean(defined)) if defined else float("nan"),
        "log_loss": log_loss(y_true, proba, labels=labels),
        "brier": brier_score_loss(y_true, proba, labels=labels),
        "ece_per_class": ece_per_class(y_true, proba, classes, n_bins),
    }


def subject_confusions(
    y_true: np.ndarray, y_pred: np.ndarray, subjects: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Subject ids (sorted) and their confusion matrices ``(n_subjects, K, K)``."""
    subject_ids, codes = np.unique(np.asarray(subjects, dtype=str), return_inverse=True)
    flat = np.bincount(
        (codes * n_classes + y_true) * n_classes + y_pred, minlength=len(subject_ids) * n_classes**2
    )
    return subject_ids, flat.reshape(len(subject_ids), n_classes, n_classes)


def per_subject_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, subjects: np.ndarray, classes: list[str]
) -> pd.DataFrame:
    """One row per subject: ``subject_id, n_epochs`` and the :data:`CONFUSION_SCORES`.

    A subject whose true labels hold one class (e.g. one epoch per subject, trial datasets) has no
    agreement beyond chance to measure: its kappa is NaN (0 or undefined otherwise, whatever the
    predictions), so it stays out of the per-subject spread.
    """
    subject_ids, cms = subject_confusions(y_true, y_pred, subjects, len(classes))
    scores = scores_from_confusion(cms)
    scores["cohen_kappa"] = np.where(
        (cms.sum(axis=2) > 0).sum(axis=1) > 1, scores["cohen_kappa"], np.nan
    )
    table = pd.DataFrame({"subject_id": subject_ids, "n_epochs": cms.sum(axis=(1, 2))})
    for name in CONFUSION_SCORES:
        table[name] = scores[name]
    return table


def subject_resamples(n_subjects: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n_subjects)`` counts: how often each subject is drawn in each bootstrap replicate
    (subjects drawn with replacement, the unit of independence). Paired comparisons apply the
    same draws to both models."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_subjects, np.full(n_subjects, 1.0 / n_subjects), size=n_boot)


def percentile_interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates (NaN replicates ignored)."""
    low, high = np.nanpercentile(replicates, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(low), float(high)


def too_few_subjects(n_subjects: int, min_subjects: int) -> str | None:
    """Why no bootstrap interval is given, or None when there are enough subjects."""
    if n_subjects >= min_subjects:
        return None
    return (
        f"{n_subjects} subjects < {min_subjects}: a percentile bootstrap over so few clusters does not "
        "cover (its replicates are a handful of distinct subject mixtures); read the per-subject spread instead."
    )


def bootstrap_intervals(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    subjects: np.ndarray,
    classes: list[str],
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Percentile intervals of the :data:`CONFUSION_SCORES` and per-class F1, resampling subjects.

    Each replicate draws subjects with replacement (the unit of independence) and sums their
    confusion matrices, so epochs of one subject stay together.
    """
    _, cms = subject_confusions(y_true, y_pred, subjects, len(classes))
    draws = subject_resamples(len(cms), n_boot, seed)
    replicates = scores_from_confusion(np.einsum("bs,skl->bkl", draws, cms))
    intervals = {}
    for name in CONFUSION_SCORES:
        low, high = percentile_interval(replicates[name], level)
        intervals[name] = {"low": low, "high": high}
    for k, c in enumerate(classes):
        low, high = percentile_interval(replicates["f1"][:, k], level)
        intervals[f"f1_{c}"] = {"low": low, "high": high}
    return intervals


def summarise_subjects(
    table: pd.DataFrame, metrics: tuple[str, ...] = CONFUSION_SCORES
) -> dict[str, dict[str, float]]:
    """Spread of per-subject scores (rows of a :func:`per_subject_metrics` table), per metric:
    ``n_subjects`` (with a defined score), ``mean``, ``sd`` (sample, ddof 1), ``median``, ``q25``,
    ``q75`` and ``iqr`` (``q75 - q25``). Undefined scores (e.g. kappa of a one-class subject) are
    left out; statistics that need more subjects than there are are NaN.
    """
    summary = {}
    for name in metrics:
        values = table[name].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        q25, median, q75 = np.percentile(values, [25, 50, 75]) if len(values) else (np.nan,) * 3
        summary[name] = {
            "n_subjects": len(values),
            "mean": float(values.mean()) if len(values) else float("nan"),
            "sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
            "median": float(median),
            "q25": float(q25),
            "q75": float(q75),
            "iqr": float(q75 - q25),
        }
    return summary
