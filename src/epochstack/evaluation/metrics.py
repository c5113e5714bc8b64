"""Epoch-level classification metrics, per-subject tables and subject-bootstrap intervals.

Point estimates come from scikit-learn. Bootstrap replicates and per-subject tables are computed
from confusion matrices instead (:func:`scores_from_confusion`), vectorised over replicates, so a
thousand replicates cost one matrix product rather than a thousand scikit-learn calls.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import (
    brier_score_loss,
    cohen_kappa_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from epochstack.errors import InputDataError
from epochstack.evaluation.calibration import ece_per_class

# Scores that bootstrap replicates and per-subject tables carry (see scores_from_confusion).
CONFUSION_SCORES = ("accuracy", "balanced_accuracy", "macro_f1", "cohen_kappa")


def label_indices(labels, classes: list[str], source: str = "label") -> np.ndarray:
    """Integer codes of ``labels`` in ``classes`` order; unknown labels are an error."""
    codes = pd.Categorical(np.asarray(labels, dtype=object), categories=classes).codes
    if (codes < 0).any():
        unknown = sorted({str(v) for v, c in zip(labels, codes, strict=True) if c < 0})
        raise InputDataError(source, f"labels {unknown} are not among the classes {classes}.", "predict with the class list of the epoch table.")
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
    return {"accuracy": accuracy, "balanced_accuracy": balanced, "macro_f1": macro_f1, "cohen_kappa": kappa, "f1": f1}


def label_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """Metrics of hard decisions (integer codes): accuracy, balanced accuracy, macro F1, kappa, per-class P/R/F1.

    Balanced accuracy averages recall over classes present in ``y_true`` and macro F1 averages F1
    over classes present in ``y_true`` or ``y_pred``, as scikit-learn's scorers do; both come from
    the one ``precision_recall_fscore_support`` call.
    """
    labels = np.arange(len(classes))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    predicted = np.bincount(y_pred, minlength=len(classes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        kappa = cohen_kappa_score(y_true, y_pred, labels=labels)
    return {
        "n_epochs": len(y_true),
        "accuracy": float(np.mean(y_true == y_pred)),
        "balanced_accuracy": float(recall[support > 0].mean()),
        "macro_f1": float(f1[(support > 0) | (predicted > 0)].mean()),
        "cohen_kappa": float(kappa),
        "precision_per_class": dict(zip(classes, precision.tolist(), strict=True)),
        "recall_per_class": dict(zip(classes, recall.tolist(), strict=True)),
        "f1_per_class": dict(zip(classes, f1.tolist(), strict=True)),
        "support_per_class": dict(zip(classes, support.astype(int).tolist(), strict=True)),
    }


def probability_metrics(y_true: np.ndarray, proba: np.ndarray, classes: list[str], n_bins: int = 10) -> dict:
    """One-vs-rest AUROC per class, log loss, Brier score and ECE per class of ``proba`` (n, K).

    AUROC of a class absent from (or alone in) ``y_true`` is undefined: NaN.
    """
    labels = np.arange(len(classes))
    onehot = y_true[:, None] == labels[None, :]
    auroc = {
        c: float(roc_auc_score(onehot[:, k], proba[:, k])) if 0 < onehot[:, k].sum() < len(y_true) else float("nan")
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


def subject_confusions(y_true: np.ndarray, y_pred: np.ndarray, subjects: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Subject ids (sorted) and their confusion matrices ``(n_subjects, K, K)``."""
    subject_ids, codes = np.unique(np.asarray(subjects, dtype=str), return_inverse=True)
    flat = np.bincount((codes * n_classes + y_true) * n_classes + y_pred, minlength=len(subject_ids) * n_classes**2)
    return subject_ids, flat.reshape(len(subject_ids), n_classes, n_classes)


def per_subject_metrics(y_true: np.ndarray, y_pred: np.ndarray, subjects: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """One row per subject: ``subject_id, n_epochs`` and the :data:`CONFUSION_SCORES`."""
    subject_ids, cms = subject_confusions(y_true, y_pred, subjects, len(classes))
    scores = scores_from_confusion(cms)
    table = pd.DataFrame({"subject_id": subject_ids, "n_epochs": cms.sum(axis=(1, 2))})
    for name in CONFUSION_SCORES:
        table[name] = scores[name]
    return table


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
    rng = np.random.default_rng(seed)
    n_subjects = len(cms)
    draws = rng.multinomial(n_subjects, np.full(n_subjects, 1.0 / n_subjects), size=n_boot)
    replicates = scores_from_confusion(np.einsum("bs,skl->bkl", draws, cms))
    tails = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    intervals = {}
    for name in CONFUSION_SCORES:
        low, high = np.nanpercentile(replicates[name], tails)
        intervals[name] = {"low": float(low), "high": float(high)}
    for k, c in enumerate(classes):
        low, high = np.nanpercentile(replicates["f1"][:, k], tails)
        intervals[f"f1_{c}"] = {"low": float(low), "high": float(high)}
    return intervals
