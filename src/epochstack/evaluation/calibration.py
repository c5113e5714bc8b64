"""Calibration: expected calibration error per class and reliability curves."""

from __future__ import annotations

import numpy as np
from sklearn.calibration import calibration_curve


def expected_calibration_error(is_class: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> float:
    """ECE of one class's probabilities: the epoch-weighted mean over equal-width bins of
    ``|observed frequency - mean predicted probability|``.

    Written by hand: scikit-learn's ``calibration_curve`` drops the bin counts that weight the
    mean, and the whole computation is three ``bincount`` calls.
    """
    proba = np.asarray(proba, dtype=float)
    bins = np.minimum((proba * n_bins).astype(int), n_bins - 1)
    predicted = np.bincount(bins, weights=proba, minlength=n_bins)
    observed = np.bincount(bins, weights=np.asarray(is_class, dtype=float), minlength=n_bins)
    return float(np.abs(observed - predicted).sum() / len(proba))


def ece_per_class(
    y_true: np.ndarray, proba: np.ndarray, classes: list[str], n_bins: int = 10
) -> dict[str, float]:
    """One-vs-rest ECE of every class (``y_true`` integer codes, ``proba`` (n, K))."""
    return {
        c: expected_calibration_error(y_true == k, proba[:, k], n_bins)
        for k, c in enumerate(classes)
    }


def reliability_curves(
    y_true: np.ndarray, proba: np.ndarray, classes: list[str], n_bins: int = 10
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per class: (mean predicted probability, observed frequency) of the non-empty uniform bins."""
    curves = {}
    for k, c in enumerate(classes):
        observed, predicted = calibration_curve(
            y_true == k, proba[:, k], n_bins=n_bins, strategy="uniform", pos_label=True
        )
        curves[c] = (predicted, observed)
    return curves
