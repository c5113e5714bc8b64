"""Event scoring: epochs to events, FA/24 h (timescoring), TAES, IoU matching, FA sweep."""

import numpy as np
import pytest
from timescoring.scoring import EventScoring

from epochstack.evaluation.events import (
    RecordingDetections,
    epochs_to_events,
    iou_scores,
    sensitivity_at_fa,
    sensitivity_fa_curve,
    szcore_scores,
    taes_counts,
    taes_scores,
)

DAY = 86400.0
STRICT = EventScoring.Parameters(toleranceStart=0, toleranceEnd=0, minOverlap=0, maxEventDuration=3600, minDurationBetweenEvents=0)


def test_consecutive_positive_epochs_merge_and_gaps_split():
    active = np.array([0, 1, 1, 0, 1, 1, 1], dtype=bool)
    starts = np.array([0, 10, 20, 30, 40, 60, 70], dtype=float)  # epoch 50-60 was excluded
    assert epochs_to_events(active, starts, np.full(7, 10.0)) == [(10.0, 30.0), (40.0, 50.0), (60.0, 80.0)]


def test_false_alarms_per_day_on_a_known_timeline():
    reference = [(1000.0, 1100.0), (50_000.0, 50_060.0)]
    detected = [(1050.0, 1080.0), (10_000.0, 10_030.0), (20_000.0, 20_030.0), (30_000.0, 30_030.0)]
    half_day = RecordingDetections(reference, detected, DAY / 2)
    scores = szcore_scores([half_day], STRICT)
    assert scores["n_false_alarms"] == 3
    assert scores["fa_per_24h"] == pytest.approx(6.0)  # 3 false alarms in 12 h
    assert scores["sensitivity"] == pytest.approx(0.5) and scores["precision"] == pytest.approx(0.25)
    two_records = szcore_scores([half_day, RecordingDetections([], [], DAY / 2)], STRICT)
    assert two_records["fa_per_24h"] == pytest.approx(3.0)


def test_taes_partial_overlaps():
    assert taes_counts([(0.0, 10.0)], [(5.0, 15.0)]) == pytest.approx((0.5, 0.5, 0.5))
    assert taes_counts([(0.0, 10.0)], [(2.0, 4.0), (6.0, 8.0)]) == pytest.approx((0.4, 0.6, 0.0))
    assert taes_counts([(0.0, 10.0)], [(-20.0, 30.0)]) == pytest.approx((1.0, 0.0, 1.0))  # false-alarm part capped at 1
    assert taes_counts([(0.0, 10.0)], [(50.0, 60.0)]) == pytest.approx((0.0, 1.0, 1.0))
    scores = taes_scores([RecordingDetections([(0.0, 10.0)], [(5.0, 15.0)], DAY)])
    assert scores["sensitivity"] == pytest.approx(0.5) and scores["fa_per_24h"] == pytest.approx(0.5)
    better = taes_scores([RecordingDetections([(0.0, 10.0)], [(1.0, 11.0)], DAY)])
    assert 0 <= scores["f1"] < better["f1"] <= 1


def test_iou_matching_is_one_to_one():
    recording = RecordingDetections([(0.0, 10.0), (20.0, 30.0)], [(0.0, 8.0), (1.0, 9.0), (20.0, 40.0)], DAY)
    scores = iou_scores([recording], min_iou=0.4)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(1.0)
    assert iou_scores([recording], min_iou=0.9)["recall"] == 0.0


def test_sensitivity_grows_with_allowed_false_alarms():
    rng = np.random.default_rng(0)
    starts = np.arange(2880) * 30.0
    truth = np.zeros(2880, dtype=bool)
    for onset in (100, 900, 1700, 2500):
        truth[onset : onset + 4] = True
    proba = np.clip(0.5 * truth + rng.random(2880) * 0.6, 0, 1)
    reference = epochs_to_events(truth, starts, np.full(2880, 30.0))
    curve = sensitivity_fa_curve([reference], [proba], [starts], [np.full(2880, 30.0)], [DAY], np.linspace(0, 1, 21), STRICT)
    at_fa = sensitivity_at_fa(curve, [10, 5, 2.5, 1])
    assert list(at_fa) == ["sensitivity_at_10fa", "sensitivity_at_5fa", "sensitivity_at_2_5fa", "sensitivity_at_1fa"]
    values = [at_fa[k] for k in at_fa]
    assert values == sorted(values, reverse=True) and values[0] == 1.0
