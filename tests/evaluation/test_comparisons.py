"""Paired subject-level comparisons: delta, paired bootstrap interval, permutation p, and the claim."""

import numpy as np
import pytest

from epochstack.evaluation.comparisons import conclusion, paired_comparison
from epochstack.evaluation.metrics import label_metrics

BOOT = {"n_boot": 500, "level": 0.95, "min_subjects": 10}


def subjects_data(n_subjects, accuracy_a, accuracy_b, n_epochs=200, seed=0):
    """Three-class labels; model a right with probability accuracy_a, model b with accuracy_b."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n_subjects * n_epochs)
    subjects = np.repeat([f"s{i:02d}" for i in range(n_subjects)], n_epochs)
    subject_skill = np.repeat(rng.normal(0, 0.03, n_subjects), n_epochs)  # subjects differ

    def model(accuracy):
        right = rng.random(len(y)) < np.clip(accuracy + subject_skill, 0, 1)
        return np.where(right, y, (y + rng.integers(1, 3, len(y))) % 3)

    return y, model(accuracy_a), model(accuracy_b), subjects


def test_a_clearly_better_model_is_claimed_better():
    y, a, b, subjects = subjects_data(12, 0.9, 0.7)
    result = paired_comparison(y, a, b, subjects, 3, ["cohen_kappa", "macro_f1"], BOOT, seed=0)
    kappa = result["cohen_kappa"]
    pooled = (
        label_metrics(y, a, ["x", "y", "z"])["cohen_kappa"]
        - label_metrics(y, b, ["x", "y", "z"])["cohen_kappa"]
    )
    assert kappa["delta"] == pytest.approx(pooled)
    assert 0 < kappa["ci_low"] < kappa["delta"] < kappa["ci_high"]
    assert kappa["p_value"] < 0.01 and kappa["n_subjects_a_better"] == 12
    assert conclusion(kappa, "a", "b", 0.05) == "a better"
    assert (
        conclusion(
            paired_comparison(y, b, a, subjects, 3, ["cohen_kappa"], BOOT, 0)["cohen_kappa"],
            "b",
            "a",
            0.05,
        )
        == "a better"
    )


def test_equal_models_support_no_claim():
    y, a, b, subjects = subjects_data(12, 0.8, 0.8, seed=1)
    kappa = paired_comparison(y, a, b, subjects, 3, ["cohen_kappa"], BOOT, seed=0)["cohen_kappa"]
    assert kappa["ci_low"] < 0 < kappa["ci_high"]
    assert conclusion(kappa, "a", "b", 0.05) == "no supported difference"
    same = paired_comparison(y, a, a, subjects, 3, ["cohen_kappa"], BOOT, seed=0)["cohen_kappa"]
    assert same["delta"] == 0 and same["p_value"] == 1.0


def test_too_few_subjects_give_no_interval_and_no_claim():
    y, a, b, subjects = subjects_data(4, 0.95, 0.5)
    kappa = paired_comparison(y, a, b, subjects, 3, ["cohen_kappa"], BOOT, seed=0)["cohen_kappa"]
    assert kappa["delta"] > 0.5  # a large difference ...
    assert (
        kappa["ci_low"] is None
        and kappa["ci_high"] is None
        and "4 subjects < 10" in kappa["ci_reason"]
    )
    assert kappa["p_value"] == pytest.approx(
        0.125
    )  # exact: only 2 of the 2^4 swap patterns reach |delta|
    assert conclusion(kappa, "a", "b", 0.05).startswith("no claim")  # ... but no claim


def test_the_interval_is_seeded_and_paired():
    y, a, b, subjects = subjects_data(15, 0.85, 0.8, seed=2)
    first = paired_comparison(y, a, b, subjects, 3, ["macro_f1"], BOOT, seed=5)["macro_f1"]
    assert first == paired_comparison(y, a, b, subjects, 3, ["macro_f1"], BOOT, seed=5)["macro_f1"]
    # paired draws: the interval of a difference between two models that err together is narrow
    correlated = np.where(np.random.default_rng(0).random(len(y)) < 0.02, (a + 1) % 3, a)
    tight = paired_comparison(y, a, correlated, subjects, 3, ["macro_f1"], BOOT, seed=5)["macro_f1"]
    assert tight["ci_high"] - tight["ci_low"] < first["ci_high"] - first["ci_low"]


def test_trial_datasets_one_epoch_per_subject_still_get_a_p_value():
    """Per-subject kappa is undefined with one epoch per subject; the pooled difference and its
    permutation p-value are not."""
    y, a, b, subjects = subjects_data(40, 0.95, 0.45, n_epochs=1, seed=3)
    kappa = paired_comparison(y, a, b, subjects, 3, ["cohen_kappa"], BOOT, seed=0)["cohen_kappa"]
    assert kappa["n_subjects_a_better"] == kappa["n_subjects_b_better"] == 0  # no per-subject kappa
    assert kappa["delta"] > 0.3 and kappa["ci_low"] > 0 and kappa["p_value"] < 0.01
    assert conclusion(kappa, "a", "b", 0.05) == "a better"
