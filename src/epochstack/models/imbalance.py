"""Class-imbalance handling applied to training folds only (never to the epochs predicted).

Two families, combinable: resampling of the training rows (imbalanced-learn) and class weights
passed to ``fit`` as ``sample_weight``.
"""

from __future__ import annotations

import numpy as np

from epochstack.errors import InputDataError

RESAMPLERS = ("none", "undersample", "oversample", "smote")
CLASS_WEIGHTS = ("none", "balanced", "inv_sqrt")


def class_weights(
    counts: np.ndarray, scheme: str | None, source: str = "class_weight"
) -> np.ndarray | None:
    """Weight per class from its count: ``balanced`` (1/frequency) or ``inv_sqrt``
    (1/sqrt(frequency)), scaled to mean 1 over classes; ``none``: ``None``. Empty classes count 1."""
    if scheme in (None, "none"):
        return None
    if scheme not in CLASS_WEIGHTS:
        raise InputDataError(
            source, f"unknown scheme {scheme!r}.", f"use one of {list(CLASS_WEIGHTS)}."
        )
    counts = np.maximum(np.asarray(counts, dtype=float), 1)
    freq = counts / counts.sum()
    weights = 1.0 / freq if scheme == "balanced" else 1.0 / np.sqrt(freq)
    return weights / weights.mean()


def class_sample_weights(y: np.ndarray, scheme: str | None) -> np.ndarray | None:
    """Per-row weights from :func:`class_weights`, scaled to mean 1 over rows so learning rates
    and penalties keep their meaning."""
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    per_class = class_weights(counts, scheme, "stacking.imbalance.class_weight")
    if per_class is None:
        return None
    weights = per_class[inverse]
    return weights / weights.mean()


def resample_training_rows(
    X: np.ndarray, y: np.ndarray, method: str | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Random under/oversampling or SMOTE of the training rows (imbalanced-learn)."""
    if method in (None, "none"):
        return X, y
    from imblearn.over_sampling import SMOTE, RandomOverSampler
    from imblearn.under_sampling import RandomUnderSampler

    samplers = {
        "undersample": lambda: RandomUnderSampler(random_state=seed),
        "oversample": lambda: RandomOverSampler(random_state=seed),
        "smote": lambda: SMOTE(
            random_state=seed,
            k_neighbors=min(5, max(1, int(np.unique(y, return_counts=True)[1].min()) - 1)),
        ),
    }
    if method not in samplers:
        raise InputDataError(
            "stacking.imbalance.resample",
            f"unknown method {method!r}.",
            f"use one of {list(RESAMPLERS)}.",
        )
    if method == "smote" and np.isnan(X).any():
        raise InputDataError(
            "features",
            "SMOTE needs features without NaN.",
            "use stacking.imbalance.resample: oversample, or impute the features.",
        )
    return samplers[method]().fit_resample(X, y)


def prepare_training_rows(
    X: np.ndarray, y: np.ndarray, imbalance: dict | None, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Resample then weight the rows of one training fold: ``(X, y, sample_weight)``."""
    imbalance = imbalance or {}
    X, y = resample_training_rows(X, y, imbalance.get("resample"), seed)
    return X, y, class_sample_weights(y, imbalance.get("class_weight"))
