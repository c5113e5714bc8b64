"""Expected calibration error and reliability curves."""

import numpy as np
import pytest

from epochstack.evaluation.calibration import (
    ece_per_class,
    expected_calibration_error,
    reliability_curves,
)


def test_perfectly_calibrated_sample_has_ece_near_zero():
    rng = np.random.default_rng(0)
    proba = rng.random(200_000)
    outcome = rng.random(200_000) < proba
    assert expected_calibration_error(outcome, proba) < 0.01


def test_overconfident_sample():
    proba = np.full(1000, 0.9)
    outcome = np.arange(1000) % 2 == 0  # half right: 0.9 claimed, 0.5 observed
    assert expected_calibration_error(outcome, proba) == pytest.approx(0.4)


def test_per_class_and_reliability_curve():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert ece_per_class(y, proba, ["a", "b"]) == {"a": 0.0, "b": 0.0}
    predicted, observed = reliability_curves(y, proba, ["a", "b"])["b"]
    assert list(predicted) == [0.0, 1.0] and list(observed) == [0.0, 1.0]
