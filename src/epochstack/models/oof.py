"""Out-of-fold engine: each CV fold is predicted by a model fitted on the other folds only.

The engine only ever receives cross-validation rows (fold >= 0); the held-out test fold (-1)
is refused, so nothing computed here (scores, tuning objectives) can have seen it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import cohen_kappa_score, f1_score

from epochstack.models.imbalance import prepare_training_rows
from epochstack.models.registry import sample_weight_fit_params

ModelFactory = Callable[[], BaseEstimator]


@dataclass
class FoldRecord:
    """What one fold of the OOF loop fitted on, predicted, and how long it took."""

    fold: int
    fit_epoch_ids: np.ndarray
    predicted_epoch_ids: np.ndarray
    fit_seconds: float
    predict_seconds: float
    macro_f1: float


@dataclass
class OOFResult:
    """Out-of-fold class probabilities ``(n_rows, n_classes)`` in input row order."""

    proba: np.ndarray
    classes: list[str]
    folds: list[FoldRecord] = field(default_factory=list)

    def predictions(self) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)[self.proba.argmax(axis=1)]


def check_cv_rows(folds: np.ndarray) -> None:
    """Refuse held-out test rows (fold -1) and single-fold inputs."""
    folds = np.asarray(folds)
    if (folds < 0).any():
        raise ValueError(
            f"{int((folds < 0).sum())} held-out test rows (fold -1) reached cross-validation code; "
            "only CV rows (fold >= 0) may be passed here."
        )
    if np.unique(folds).size < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {np.unique(folds).tolist()}.")


def align_proba(proba: np.ndarray, model_classes, classes: list[str]) -> np.ndarray:
    """Columns of ``proba`` (in ``model_classes`` order) placed in ``classes`` order (0 when absent)."""
    out = np.zeros((proba.shape[0], len(classes)))
    position = {str(c): i for i, c in enumerate(classes)}
    for j, c in enumerate(model_classes):
        out[:, position[str(c)]] = proba[:, j]
    return out


def fit_estimator(make_model: ModelFactory, X: np.ndarray, y: np.ndarray, imbalance: dict | None, seed: int) -> BaseEstimator:
    """Fit a fresh model on training rows after class-imbalance handling (training rows only)."""
    X_fit, y_fit, weights = prepare_training_rows(X, y, imbalance, seed)
    model = make_model()
    model.fit(X_fit, y_fit, **sample_weight_fit_params(model, weights))
    return model


def predict_proba(model: BaseEstimator, X: np.ndarray, classes: list[str]) -> np.ndarray:
    """Class probabilities in ``classes`` order."""
    return align_proba(model.predict_proba(X), model.classes_, classes)


def scores(y_true, y_pred) -> dict[str, float]:
    """Macro F1 and Cohen's kappa."""
    return {
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "kappa": float(cohen_kappa_score(y_true, y_pred)),
    }


def out_of_fold(
    make_model: ModelFactory,
    X: np.ndarray,
    y: np.ndarray,
    folds: np.ndarray,
    classes: list[str],
    epoch_ids: np.ndarray | None = None,
    imbalance: dict | None = None,
    seed: int = 0,
    on_fold: Callable[[int, FoldRecord], None] | None = None,
) -> OOFResult:
    """Fit on all folds but one, predict that one, for every fold.

    ``on_fold(step, record)`` runs after each fold (Optuna reports and prunes there).
    The fit and predicted epoch ids of each fold are recorded and checked to be disjoint.
    """
    folds = np.asarray(folds)
    check_cv_rows(folds)
    y = np.asarray(y, dtype=object)
    epoch_ids = np.asarray(epoch_ids if epoch_ids is not None else np.arange(len(y)))
    proba = np.full((len(y), len(classes)), np.nan)
    result = OOFResult(proba=proba, classes=list(classes))
    for step, fold in enumerate(np.unique(folds)):
        held_out = folds == fold
        start = time.perf_counter()
        model = fit_estimator(make_model, X[~held_out], y[~held_out], imbalance, seed)
        fitted = time.perf_counter()
        proba[held_out] = predict_proba(model, X[held_out], classes)
        predicted = time.perf_counter()
        record = FoldRecord(
            fold=int(fold),
            fit_epoch_ids=epoch_ids[~held_out],
            predicted_epoch_ids=epoch_ids[held_out],
            fit_seconds=fitted - start,
            predict_seconds=predicted - fitted,
            macro_f1=scores(y[held_out], np.asarray(classes, dtype=object)[proba[held_out].argmax(axis=1)])["macro_f1"],
        )
        if np.intersect1d(record.fit_epoch_ids, record.predicted_epoch_ids).size:
            raise AssertionError(f"fold {fold}: epochs both fitted and predicted (leakage).")
        result.folds.append(record)
        if on_fold is not None:
            on_fold(step, record)
    return result
