"""Tabular models: a scikit-learn estimator on feature columns, as an :class:`EpochModel`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from epochstack.models.engine import EpochData, EpochModel
from epochstack.models.imbalance import prepare_training_rows


def sample_weight_fit_params(estimator: BaseEstimator, sample_weight) -> dict:
    """``fit`` keyword arguments passing ``sample_weight`` to the final step of a Pipeline."""
    if sample_weight is None:
        return {}
    if isinstance(estimator, Pipeline):
        return {f"{estimator.steps[-1][0]}__sample_weight": sample_weight}
    return {"sample_weight": sample_weight}


def align_proba(proba: np.ndarray, model_classes, classes: list[str]) -> np.ndarray:
    """Columns of ``proba`` (in ``model_classes`` order) placed in ``classes`` order (0 when absent)."""
    out = np.zeros((proba.shape[0], len(classes)))
    position = {str(c): i for i, c in enumerate(classes)}
    for j, c in enumerate(model_classes):
        out[:, position[str(c)]] = proba[:, j]
    return out


class TabularModel(EpochModel):
    """``make_estimator()`` fitted on ``columns`` of the data's features.

    Class-imbalance handling (resampling, class weights) touches the fitting rows only.
    """

    reads = "features"

    def __init__(
        self,
        make_estimator: Callable[[], BaseEstimator],
        columns: list[str],
        classes: list[str],
        imbalance: dict | None = None,
        seed: int = 0,
    ):
        self.make_estimator = make_estimator
        self.columns = list(columns)
        self.classes = list(classes)
        self.imbalance = dict(imbalance or {})
        self.seed = int(seed)

    def fit(self, data: EpochData, rows: np.ndarray) -> TabularModel:
        X, y = data.feature_matrix(rows, self.columns), data.labels(rows)
        X_fit, y_fit, weights = prepare_training_rows(X, y, self.imbalance, self.seed)
        self.estimator_ = self.make_estimator()
        self.estimator_.fit(X_fit, y_fit, **sample_weight_fit_params(self.estimator_, weights))
        self.seen_epoch_ids = data.epoch_ids(rows)
        return self

    def predict_proba(self, data: EpochData, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.empty((0, len(self.classes)))
        X = data.feature_matrix(rows, self.columns)
        return align_proba(self.estimator_.predict_proba(X), self.estimator_.classes_, self.classes)
