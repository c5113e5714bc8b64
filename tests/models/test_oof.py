"""The out-of-fold engine: no epoch predicted by a model that saw it; chance on permuted labels."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from epochstack.models.imbalance import class_sample_weights, prepare_training_rows
from epochstack.models.oof import out_of_fold, scores
from epochstack.models.registry import make_estimator

CLASSES = ["NREM", "REM", "Wake"]


def informative_data(n=480, n_folds=4, seed=0):
    """Features 0-2 shift with the class; the other columns are noise."""
    rng = np.random.default_rng(seed)
    y = rng.choice(CLASSES, size=n, p=[0.5, 0.15, 0.35]).astype(object)
    X = rng.normal(size=(n, 8))
    for j, c in enumerate(CLASSES):
        X[:, j] += 2.5 * (y == c)
    folds = np.repeat(np.arange(n_folds), n // n_folds)
    return X, y, folds


class IdSpy(ClassifierMixin, BaseEstimator):
    """Column 0 holds the epoch id; fails if asked to predict an epoch it was fitted on."""

    def fit(self, X, y, sample_weight=None):
        self.seen_ = set(X[:, 0].astype(int))
        self.classes_ = np.unique(y)
        self.n_fit_ = len(y)
        self.class_counts_ = dict(zip(*np.unique(y, return_counts=True), strict=True))
        return self

    def predict_proba(self, X):
        assert not self.seen_ & set(X[:, 0].astype(int)), "predicting an epoch the model was fitted on"
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))


def test_oof_rows_come_from_models_that_never_saw_them():
    X, y, folds = informative_data()
    ids = np.arange(len(y))
    X_ids = np.column_stack([ids, X])
    result = out_of_fold(IdSpy, X_ids, y, folds, CLASSES, epoch_ids=ids)

    assert not np.isnan(result.proba).any()
    predicted = np.concatenate([r.predicted_epoch_ids for r in result.folds])
    assert sorted(predicted) == list(ids), "every CV epoch predicted exactly once"
    for record in result.folds:
        assert set(record.predicted_epoch_ids) == set(ids[folds == record.fold])
        assert not set(record.fit_epoch_ids) & set(record.predicted_epoch_ids)
        assert set(record.fit_epoch_ids) == set(ids[folds != record.fold])


def test_held_out_rows_are_refused():
    X, y, folds = informative_data()
    folds = folds.copy()
    folds[:10] = -1
    with pytest.raises(ValueError, match="fold -1"):
        out_of_fold(lambda: make_estimator("logreg"), X, y, folds, CLASSES)


def test_label_permutation_scores_at_chance():
    """Leakage detector: with labels permuted within folds, OOF scores fall to chance level."""
    X, y, folds = informative_data(n=600)
    make = lambda: make_estimator("extra_trees", {"n_estimators": 30, "min_samples_leaf": 3}, seed=0)  # noqa: E731
    honest = scores(y, out_of_fold(make, X, y, folds, CLASSES, imbalance={"class_weight": "balanced"}).predictions())
    rng = np.random.default_rng(1)
    permuted = y.copy()
    for f in np.unique(folds):
        permuted[folds == f] = rng.permutation(y[folds == f])
    chance = scores(permuted, out_of_fold(make, X, permuted, folds, CLASSES, imbalance={"class_weight": "balanced"}).predictions())
    assert honest["macro_f1"] > 0.8
    assert chance["macro_f1"] < 1 / len(CLASSES) + 0.08
    assert abs(chance["kappa"]) < 0.08


def test_same_seed_same_probabilities():
    X, y, folds = informative_data()
    runs = [out_of_fold(lambda: make_estimator("extra_trees", {"n_estimators": 20}, seed=3, n_jobs=2), X, y, folds, CLASSES).proba for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_resampling_touches_training_folds_only():
    X, y, folds = informative_data()
    X_ids = np.column_stack([np.arange(len(y)), X])
    fitted = []

    def make():
        fitted.append(IdSpy())
        return fitted[-1]

    result = out_of_fold(make, X_ids, y, folds, CLASSES, imbalance={"resample": "undersample"}, seed=0)
    for model, record in zip(fitted, result.folds, strict=True):
        assert len(set(model.class_counts_.values())) == 1, "training fold balanced"
        assert model.n_fit_ < len(record.fit_epoch_ids)
        assert len(record.predicted_epoch_ids) == (folds == record.fold).sum(), "predicted fold untouched"


def test_class_weights():
    y = np.array(["a"] * 80 + ["b"] * 20, dtype=object)
    balanced = class_sample_weights(y, "balanced")
    assert balanced[y == "a"].sum() == pytest.approx(balanced[y == "b"].sum())
    inv_sqrt = class_sample_weights(y, "inv_sqrt")
    assert inv_sqrt[y == "b"][0] / inv_sqrt[y == "a"][0] == pytest.approx(2.0)
    assert np.mean(inv_sqrt) == pytest.approx(1.0)
    X = np.random.default_rng(0).normal(size=(100, 3))
    X_s, y_s, w = prepare_training_rows(X, y, {"resample": "smote"}, seed=0)
    assert (y_s == "b").sum() == 80 and w is None
