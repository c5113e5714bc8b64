"""The one out-of-fold engine: no epoch predicted by a model that saw it; chance on permuted labels."""

from functools import partial

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from epochstack.execution import Executor
from epochstack.models.engine import EpochModel, out_of_fold, scores
from epochstack.models.imbalance import class_sample_weights, prepare_training_rows
from epochstack.models.registry import build_base_model
from epochstack.models.tabular import TabularModel
from tests.models.conftest import CLASSES, informative_data, permuted_labels

COLUMNS = [f"f{j}" for j in range(6)]


class IdSpy(EpochModel):
    """Remembers what it was fitted on; fails if asked to predict one of those epochs."""

    fitted: list = []

    def __init__(self):
        self.classes = CLASSES

    def fit(self, data, rows):
        self.seen_epoch_ids = data.epoch_ids(rows)
        IdSpy.fitted.append(self)
        return self

    def predict_proba(self, data, rows):
        assert not set(self.seen_epoch_ids) & set(data.epoch_ids(rows)), (
            "predicting an epoch the model was fitted on"
        )
        return np.full((len(rows), len(CLASSES)), 1 / len(CLASSES))


def tabular(name="extra_trees", params=None, seed=0, imbalance=None):
    """A factory of unfitted tabular models (what the engine calls once per fold)."""
    spec = {"estimator": name, "params": params or {}}
    return partial(
        build_base_model, name, spec, CLASSES, columns=COLUMNS, seed=seed, imbalance=imbalance
    )


def test_oof_rows_come_from_models_that_never_saw_them():
    data, cv, _ = informative_data()
    result = out_of_fold(IdSpy, data, cv)
    assert not np.isnan(result.proba).any()
    predicted = np.concatenate([r.predicted_epoch_ids for r in result.folds])
    assert sorted(predicted) == sorted(data.epoch_ids(cv)), "every CV epoch predicted exactly once"
    folds = data.folds(cv)
    for record in result.folds:
        assert set(record.predicted_epoch_ids) == set(data.epoch_ids(cv[folds == record.fold]))
        assert set(record.fit_epoch_ids) == set(data.epoch_ids(cv[folds != record.fold]))


def test_a_model_that_saw_the_predicted_fold_is_caught():
    class Leaky(IdSpy):
        def fit(self, data, rows):
            self.seen_epoch_ids = data.epoch_ids(
                np.arange(len(data.table))
            )  # e.g. early stopping on all epochs
            return self

        def predict_proba(self, data, rows):
            return np.full((len(rows), len(CLASSES)), 1 / 3)

    data, cv, _ = informative_data()
    with pytest.raises(AssertionError, match="leakage"):
        out_of_fold(Leaky, data, cv)


def test_held_out_rows_are_refused():
    data, cv, test = informative_data(n_subjects=10, n_test_subjects=2)
    with pytest.raises(ValueError, match="fold -1"):
        out_of_fold(tabular("logreg"), data, np.concatenate([cv, test]))


def test_label_permutation_scores_at_chance():
    """Leakage detector: with labels permuted within folds, OOF scores fall to chance level."""
    data, cv, _ = informative_data(per_subject=100)
    make = tabular(
        "extra_trees",
        {"n_estimators": 30, "min_samples_leaf": 3},
        imbalance={"class_weight": "balanced"},
    )
    honest = scores(data.labels(cv), out_of_fold(make, data, cv).predictions())
    shuffled = permuted_labels(data)
    chance = scores(shuffled.labels(cv), out_of_fold(make, shuffled, cv).predictions())
    assert honest["macro_f1"] > 0.8
    assert chance["macro_f1"] < 1 / len(CLASSES) + 0.08
    assert abs(chance["kappa"]) < 0.08


def test_parallel_folds_equal_sequential_ones():
    data, cv, _ = informative_data()
    make = tabular("extra_trees", {"n_estimators": 20}, seed=3)
    sequential = out_of_fold(make, data, cv).proba
    np.testing.assert_array_equal(out_of_fold(make, data, cv).proba, sequential)
    np.testing.assert_array_equal(
        out_of_fold(make, data, cv, Executor("local", None, 2)).proba, sequential
    )


class CountingEstimator(ClassifierMixin, BaseEstimator):
    """Records the class counts it was fitted on."""

    def fit(self, X, y, sample_weight=None):
        self.classes_, counts = np.unique(y, return_counts=True)
        self.class_counts_ = dict(zip(self.classes_, counts, strict=True))
        CountingEstimator.last = self
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))


def test_resampling_touches_training_folds_only():
    data, cv, _ = informative_data()
    records = []

    def make():
        return TabularModel(CountingEstimator, COLUMNS, CLASSES, {"resample": "undersample"})

    def remember(step, record):
        records.append((record, CountingEstimator.last.class_counts_))

    result = out_of_fold(make, data, cv, on_fold=remember)
    for record, counts in records:
        assert len(set(counts.values())) == 1, "training fold balanced"
        assert sum(counts.values()) < len(record.fit_epoch_ids)
    assert sum(len(r.predicted_epoch_ids) for r in result.folds) == len(cv), (
        "predicted folds untouched"
    )


def test_a_model_predicting_one_class_is_flagged_degenerate():
    class Constant(IdSpy):
        def predict_proba(self, data, rows):
            return np.tile([1.0, 0.0, 0.0], (len(rows), 1))

    data, cv, _ = informative_data()
    assert out_of_fold(Constant, data, cv).degenerate_folds == [0, 1, 2, 3]
    assert out_of_fold(tabular("logreg"), data, cv).degenerate_folds == []


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


def test_the_refit_beside_the_folds_equals_a_refit_after_them():
    """``refit_rows``: the final model is fitted on every CV row in a worker, beside the fold
    models, and predicts the test rows exactly as one fitted afterwards in this process."""
    data, cv, test = informative_data(n_test_subjects=2)
    make = tabular(params={"n_estimators": 20})
    result = out_of_fold(make, data, cv, Executor(n_workers=2), refit_rows=test)
    assert set(result.final.seen_epoch_ids) == set(data.epoch_ids(cv))
    after = make().fit(data, cv).predict_proba(data, test)
    np.testing.assert_array_equal(result.final_proba, after)
    alone = out_of_fold(make, data, cv)
    np.testing.assert_array_equal(result.proba, alone.proba)  # the folds are unchanged
    with pytest.raises(ValueError, match="outside the CV rows"):
        out_of_fold(make, data, cv, refit_rows=cv[:3])
