"""Epoch metrics: perfect, shuffled and hand-computed predictions; bootstrap and per-subject tables."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    balanced_accuracy_score,
    cohen_kappa_score,
    f1_score,
    precision_recall_fscore_support,
)

from epochstack.errors import InputDataError
from epochstack.evaluation.metrics import (
    bootstrap_intervals,
    confusion_counts,
    label_indices,
    label_metrics,
    per_subject_metrics,
    probability_metrics,
    scores_from_confusion,
    summarise_subjects,
    too_few_subjects,
)

CLASSES = ["NREM", "REM", "Wake"]
KNOWN_CM = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 8]])


def from_confusion(cm):
    pairs = [(t, p) for t in range(len(cm)) for p in range(len(cm)) for _ in range(cm[t, p])]
    return np.array([t for t, _ in pairs]), np.array([p for _, p in pairs])


def test_perfect_predictions_score_one():
    y = np.tile(np.arange(3), 20)
    proba = np.eye(3)[y] * 0.97 + 0.01
    scores = label_metrics(y, y, CLASSES) | probability_metrics(y, proba, CLASSES)
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "cohen_kappa", "macro_auroc"):
        assert scores[name] == pytest.approx(1.0)
    assert scores["log_loss"] < 0.03 and scores["brier"] < 1e-3


def test_shuffled_predictions_score_chance():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 30_000)
    scores = label_metrics(y, rng.permutation(y), CLASSES)
    assert abs(scores["cohen_kappa"]) < 0.03
    assert scores["accuracy"] == pytest.approx(1 / 3, abs=0.02)
    assert probability_metrics(y, rng.dirichlet(np.ones(3), len(y)), CLASSES)[
        "macro_auroc"
    ] == pytest.approx(0.5, abs=0.02)


def test_known_confusion_matrix():
    y_true, y_pred = from_confusion(KNOWN_CM)
    assert (confusion_counts(y_true, y_pred, 3) == KNOWN_CM).all()
    scores = label_metrics(y_true, y_pred, CLASSES)
    assert scores["accuracy"] == pytest.approx(16 / 20)
    assert scores["balanced_accuracy"] == pytest.approx((5 / 6 + 3 / 6 + 1) / 3)
    assert scores["f1_per_class"] == pytest.approx(
        {"NREM": 10 / 13, "REM": 6 / 10, "Wake": 16 / 17}
    )
    assert scores["cohen_kappa"] == pytest.approx((0.8 - 138 / 400) / (1 - 138 / 400))
    assert scores["support_per_class"] == {"NREM": 6, "REM": 6, "Wake": 8}


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_the_one_scorer_matches_scikit_learn():
    """label_metrics (headline), per-subject tables, bootstrap and comparisons all score through
    scores_from_confusion: it must agree with scikit-learn, classes missing from a split included."""
    rng = np.random.default_rng(1)
    for n_present in (3, 3, 2):
        for _ in range(10):
            y_true, y_pred = rng.integers(0, n_present, 50), rng.integers(0, 3, 50)
            fast = scores_from_confusion(confusion_counts(y_true, y_pred, 3))
            assert fast["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
            assert fast["cohen_kappa"] == pytest.approx(cohen_kappa_score(y_true, y_pred))
            assert fast["balanced_accuracy"] == pytest.approx(
                balanced_accuracy_score(y_true, y_pred)
            )
            scores = label_metrics(y_true, y_pred, CLASSES)
            precision, recall, f1, _ = precision_recall_fscore_support(
                y_true, y_pred, labels=[0, 1, 2], zero_division=0
            )
            assert list(scores["precision_per_class"].values()) == pytest.approx(precision)
            assert list(scores["recall_per_class"].values()) == pytest.approx(recall)
            assert list(scores["f1_per_class"].values()) == pytest.approx(f1)


def test_probabilities_off_by_rounding_are_renormalised_and_others_refused():
    y = np.tile(np.arange(3), 10)
    proba = (np.eye(3)[y] * 0.85 + 0.05).astype(np.float32).astype(float) * (1 + 1e-7)
    assert np.isfinite(probability_metrics(y, proba, CLASSES)["log_loss"])
    with pytest.raises(InputDataError, match="sum to"):
        probability_metrics(y, proba * 0.5, CLASSES)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 3, 600)
    y_pred = np.where(rng.random(600) < 0.8, y_true, rng.integers(0, 3, 600))
    subjects = np.repeat([f"s{i}" for i in range(6)], 100)
    first = bootstrap_intervals(y_true, y_pred, subjects, CLASSES, n_boot=500, seed=3)
    assert first == bootstrap_intervals(y_true, y_pred, subjects, CLASSES, n_boot=500, seed=3)
    kappa = label_metrics(y_true, y_pred, CLASSES)["cohen_kappa"]
    assert first["cohen_kappa"]["low"] < kappa < first["cohen_kappa"]["high"]
    assert set(first) >= {"accuracy", "macro_f1", "f1_REM"}


def test_per_subject_table():
    y_true, y_pred = from_confusion(KNOWN_CM)
    subjects = np.where(np.arange(len(y_true)) % 2 == 0, "a", "b")
    table = per_subject_metrics(y_true, y_pred, subjects, CLASSES)
    assert list(table.subject_id) == ["a", "b"] and table.n_epochs.sum() == 20
    only_a = subjects == "a"
    assert table.accuracy[0] == pytest.approx((y_true[only_a] == y_pred[only_a]).mean())


def test_unknown_label_is_a_clear_error():
    with pytest.raises(InputDataError, match="N3"):
        label_indices(["NREM", "N3"], CLASSES)


def test_subject_spread():
    table = pd.DataFrame({"cohen_kappa": [0.5, 0.7, 0.9, np.nan], "macro_f1": [0.6, 0.6, 0.9, 0.9]})
    spread = summarise_subjects(table, ("cohen_kappa", "macro_f1"))
    kappa = spread["cohen_kappa"]
    assert kappa["n_subjects"] == 3  # the subject with an undefined kappa is left out
    assert (kappa["mean"], kappa["median"]) == pytest.approx((0.7, 0.7))
    assert kappa["sd"] == pytest.approx(0.2)  # sample SD (ddof 1)
    assert (kappa["q25"], kappa["q75"], kappa["iqr"]) == pytest.approx((0.6, 0.8, 0.2))
    one = summarise_subjects(table.iloc[:1], ("cohen_kappa",))["cohen_kappa"]
    assert one["mean"] == 0.5 and np.isnan(one["sd"])


def test_no_interval_below_the_minimum_number_of_subjects():
    assert "2 subjects < 10" in too_few_subjects(2, 10)
    assert too_few_subjects(10, 10) is None


def test_per_subject_kappa_is_undefined_for_one_class_subjects():
    y_true = np.array([0, 0, 0, 1, 2, 0, 1])
    y_pred = np.array([0, 1, 0, 1, 2, 1, 1])
    subjects = np.array(["a", "a", "a", "b", "b", "c", "d"])  # a: one class; c, d: one epoch each
    table = per_subject_metrics(y_true, y_pred, subjects, CLASSES).set_index("subject_id")
    assert np.isnan(table.loc[["a", "c", "d"], "cohen_kappa"]).all()
    assert table.loc["b", "cohen_kappa"] == 1.0 and table.loc["a", "accuracy"] == pytest.approx(
        2 / 3
    )
