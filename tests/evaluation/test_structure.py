"""Structure metrics: impossible transitions, bout lengths, hypnogram edit distance."""

import numpy as np
import pytest

from epochstack.evaluation.structure import (
    count_transitions,
    edit_distance,
    hypnogram_edit_distance,
    structure_metrics,
)

CLASSES = ["NREM", "REM", "Wake"]  # codes 0, 1, 2


def reference_levenshtein(a, b):
    rows = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, rows[0] = rows[0], i
        for j, y in enumerate(b, 1):
            previous, rows[j] = rows[j], min(rows[j] + 1, rows[j - 1] + 1, previous + (x != y))
    return rows[-1]


def test_edit_distance_known_and_random_cases():
    assert (
        edit_distance(np.array([ord(c) for c in "kitten"]), np.array([ord(c) for c in "sitting"]))
        == 3
    )
    assert edit_distance(np.array([]), np.array([1, 2])) == 2
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.integers(0, 3, rng.integers(0, 12)), rng.integers(0, 3, rng.integers(0, 12))
        assert edit_distance(a, b) == reference_levenshtein(a.tolist(), b.tolist())


def test_hypnogram_edit_distance_ignores_bout_lengths():
    assert (
        hypnogram_edit_distance(np.array([0, 0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 2, 2])) == 0.0
    )
    assert hypnogram_edit_distance(np.array([0, 0, 2, 2]), np.array([0, 1, 2, 2])) == pytest.approx(
        1 / 3
    )


def test_impossible_transitions_and_bouts():
    true = [np.array([2, 2, 0, 0, 0, 1, 1, 2])]
    pred = [np.array([2, 1, 0, 0, 0, 1, 2, 2])]  # Wake->REM once among 4 stage changes
    assert count_transitions(pred[0], {(2, 1)}) == (1, 4)
    scores = structure_metrics(true, pred, CLASSES, [("Wake", "REM")], epoch_s=30.0)
    assert scores["impossible_transition_share"] == pytest.approx(0.25)
    assert scores["impossible_transition_share_true"] == 0.0
    assert scores["impossible_transitions_per_hour"] == pytest.approx(1 / (8 * 30 / 3600))
    assert scores["impossible_transitions_per_hour_true"] == 0.0
    assert scores["bout_median_s_true"] == {"NREM": 90.0, "REM": 60.0, "Wake": 45.0}
    assert scores["bout_length_error_s"]["REM"] == pytest.approx(30.0 - 60.0)
