"""Event scoring: epochs to events across gaps, FA/24 h over scored time (timescoring), NEDC TAES
on multi-overlap cases, sub-second any-overlap, IoU matching, operating points chosen on one split."""

import numpy as np
import pytest
from timescoring.scoring import EventScoring

from epochstack.evaluation.events import (
    EventTimeline,
    RecordingDetections,
    choose_operating_point,
    fa_target_key,
    frozen_threshold_scores,
    hysteresis_candidates,
    hysteresis_sweep,
    iou_scores,
    szcore_scores,
    taes_counts,
    taes_scores,
    threshold_grid,
    threshold_sweep,
)

DAY = 86400.0
STRICT = EventScoring.Parameters(
    toleranceStart=0,
    toleranceEnd=0,
    minOverlap=0,
    maxEventDuration=3600,
    minDurationBetweenEvents=0,
)


def timeline(epoch_index, epoch_s=10.0, step_s=None, reference=None, recording="r"):
    epoch_index = np.asarray(epoch_index)
    return EventTimeline.build(
        np.full(len(epoch_index), recording),
        epoch_index,
        epoch_index * (step_s or epoch_s),
        np.full(len(epoch_index), epoch_s),
        {recording: reference or []},
    )


def test_positive_epochs_merge_into_events_and_gaps_split_them():
    t = timeline([0, 1, 2, 3, 4, 6, 7])  # epoch 5 (50-60 s) was excluded
    active = np.array([0, 1, 1, 0, 1, 1, 1], dtype=bool)
    assert t.detected_events(active) == {"r": [(10.0, 30.0), (40.0, 50.0), (60.0, 80.0)]}
    assert t.duration_s == {"r": 70.0}  # scored time: 0-50 s and 60-80 s


def test_overlapping_windows_make_one_event():
    t = timeline([0, 1, 2, 3], epoch_s=30.0, step_s=15.0)  # 30-s windows every 15 s
    assert t.detected_events(np.array([0, 1, 1, 0], dtype=bool)) == {"r": [(15.0, 60.0)]}
    assert t.duration_s == {"r": 75.0}  # the union of the windows, not 4 x 30 s


def test_false_alarms_per_day_on_a_known_timeline():
    reference = [(1000.0, 1100.0), (50_000.0, 50_060.0)]
    detected = [(1050.0, 1080.0), (10_000.0, 10_030.0), (20_000.0, 20_030.0), (30_000.0, 30_030.0)]
    half_day = RecordingDetections(reference, detected, DAY / 2)
    scores = szcore_scores([half_day], STRICT)
    assert scores["n_false_alarms"] == 3
    assert scores["fa_per_24h"] == pytest.approx(6.0)  # 3 false alarms in 12 h
    assert scores["sensitivity"] == pytest.approx(0.5) and scores["precision"] == pytest.approx(
        0.25
    )
    two_records = szcore_scores([half_day, RecordingDetections([], [], DAY / 2)], STRICT)
    assert two_records["fa_per_24h"] == pytest.approx(3.0)


def test_false_alarm_rate_counts_scored_time_only():
    hour = 3600.0
    n = 24 * 360  # one day of 10-s epochs ...
    index = np.arange(n)
    kept = index[(index < 6 * 360) | (index >= 18 * 360)]  # ... of which 12 h were excluded
    reference = [
        (1000.0, 1100.0),
        (12 * hour, 12 * hour + 60),
    ]  # the second lies in the excluded half
    t = timeline(kept, reference=reference)
    assert t.duration_s["r"] == pytest.approx(12 * hour) and t.n_unscored_events == 1
    active = np.zeros(len(kept), dtype=bool)
    active[[100, 101, 2000]] = True  # one hit (1000-1020 s), one false alarm
    scores = t.score(active, STRICT)
    assert scores["fa_per_24h"] == pytest.approx(2.0)  # 1 false alarm in 12 scored hours
    assert scores["sensitivity"] == 1.0 and scores["n_reference_events"] == 1


def test_any_overlap_resolves_sub_second_gaps():
    """timescoring decides overlap at 0.1 s: a detection 0.1 s after a 0.5-s event does not hit it."""
    reference = [(10.0, 10.5)]
    miss = szcore_scores([RecordingDetections(reference, [(10.6, 11.0)], 60.0)], STRICT)
    hit = szcore_scores([RecordingDetections(reference, [(10.4, 10.9)], 60.0)], STRICT)
    assert (miss["sensitivity"], miss["n_false_alarms"]) == (0.0, 1)
    assert (hit["sensitivity"], hit["n_false_alarms"]) == (1.0, 0)


def test_taes_partial_overlaps():
    assert taes_counts([(0.0, 10.0)], [(5.0, 15.0)]) == pytest.approx((0.5, 0.5, 0.5))
    assert taes_counts([(0.0, 10.0)], [(-20.0, 30.0)]) == pytest.approx(
        (1.0, 0.0, 1.0)
    )  # false-alarm part capped at 1
    assert taes_counts([(0.0, 10.0)], [(50.0, 60.0)]) == pytest.approx((0.0, 1.0, 1.0))
    scores = taes_scores([RecordingDetections([(0.0, 10.0)], [(5.0, 15.0)], DAY)])
    assert scores["sensitivity"] == pytest.approx(0.5) and scores["fa_per_24h"] == pytest.approx(
        0.5
    )
    better = taes_scores([RecordingDetections([(0.0, 10.0)], [(1.0, 11.0)], DAY)])
    assert 0 <= scores["f1"] < better["f1"] <= 1


def test_taes_one_detection_spanning_two_events():
    """NEDC: the detection is scored against the first event; the second event is a full miss."""
    hits, misses, false_alarms = taes_counts([(0.0, 10.0), (20.0, 30.0)], [(5.0, 25.0)])
    # first event: hit 5/10, detection outside it 15 s / 10 s -> false alarm capped at 1
    assert (hits, misses, false_alarms) == pytest.approx((0.5, 0.5 + 1.0, 1.0))


def test_taes_two_detections_on_one_event():
    """NEDC: detections on one event share its credit; each adds its own false-alarm part."""
    assert taes_counts([(0.0, 10.0)], [(2.0, 4.0), (6.0, 12.0)]) == pytest.approx(
        (0.2 + 0.4, 0.4, 0.0 + 0.2)
    )
    assert taes_counts([(0.0, 10.0)], [(2.0, 4.0), (6.0, 8.0)]) == pytest.approx((0.4, 0.6, 0.0))


def test_taes_detection_consumed_by_an_earlier_event_is_not_reused():
    """A second detection on an event already counted as missed (spanned by the first detection)
    stays unused: a full false alarm, no credit to that event."""
    hits, misses, false_alarms = taes_counts(
        [(0.0, 10.0), (20.0, 30.0)], [(5.0, 25.0), (27.0, 29.0)]
    )
    assert (hits, misses, false_alarms) == pytest.approx((0.5, 1.5, 1.0 + 1.0))


def test_taes_hits_and_misses_add_up_to_the_reference_events():
    rng = np.random.default_rng(0)
    for _ in range(200):

        def events(n):
            edges = np.sort(rng.choice(np.arange(0, 400, 2.0), 2 * n, replace=False))
            return [(float(a), float(b)) for a, b in edges.reshape(-1, 2)]

        reference, detected = events(rng.integers(1, 6)), events(rng.integers(0, 6))
        hits, misses, false_alarms = taes_counts(reference, detected)
        assert hits + misses == pytest.approx(len(reference)) and 0 <= hits <= len(reference)
        assert 0 <= false_alarms <= len(detected)


def test_iou_matching_is_one_to_one():
    recording = RecordingDetections(
        [(0.0, 10.0), (20.0, 30.0)], [(0.0, 8.0), (1.0, 9.0), (20.0, 40.0)], DAY
    )
    scores = iou_scores([recording], min_iou=0.4)
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(1.0)
    assert iou_scores([recording], min_iou=0.9)["recall"] == 0.0


def test_operating_point_is_the_best_within_the_limit_with_ties_to_fewer_false_alarms():
    points = [
        {"threshold": 0.2, "sensitivity": 1.0, "fa_per_24h": 8.0, "f1": 0.5},
        {"threshold": 0.4, "sensitivity": 1.0, "fa_per_24h": 3.0, "f1": 0.7},
        {"threshold": 0.6, "sensitivity": 0.8, "fa_per_24h": 1.0, "f1": 0.8},
        {"threshold": 0.8, "sensitivity": 0.5, "fa_per_24h": 0.5, "f1": 0.6},
    ]
    assert choose_operating_point(points, "sensitivity", 10, "threshold")["threshold"] == 0.4
    assert choose_operating_point(points, "sensitivity", 2, "threshold")["threshold"] == 0.6
    assert choose_operating_point(points, "f1", None, "threshold")["threshold"] == 0.6
    none_within = choose_operating_point(points, "sensitivity", 0.1, "threshold")
    assert none_within["threshold"] == 0.8 and none_within["meets_fa_limit"] is False
    assert [fa_target_key(t) for t in (10, 2.5, 1.0)] == ["10", "2_5", "1"]


def test_sensitivity_grows_with_allowed_false_alarms():
    rng = np.random.default_rng(0)
    n = 8640  # a day of 10-s epochs
    truth = np.zeros(n, dtype=bool)
    for onset in (100, 2900, 5100, 7500):
        truth[onset : onset + 4] = True
    proba = np.clip(0.5 * truth + rng.random(n) * 0.6, 0, 1)
    reference = timeline(np.arange(n)).detected_events(truth)["r"]
    t = timeline(np.arange(n), reference=reference)
    curve = threshold_sweep(t, proba, threshold_grid(proba, 21), STRICT)
    chosen = [
        choose_operating_point(curve, "sensitivity", target, "threshold")
        for target in (10, 5, 2.5, 1)
    ]
    assert all(c["fa_per_24h"] <= target for c, target in zip(chosen, (10, 5, 2.5, 1), strict=True))
    sensitivities = [c["sensitivity"] for c in chosen]
    assert sensitivities == sorted(sensitivities, reverse=True) and sensitivities[0] == 1.0


def test_thresholds_chosen_on_one_split_are_applied_unchanged_to_another():
    rng = np.random.default_rng(1)
    n = 8640

    def split(noise):
        truth = np.zeros(n, dtype=bool)
        for onset in rng.choice(np.arange(50, n - 50, 400), 5, replace=False):
            truth[onset : onset + 3] = True
        proba = np.clip(0.6 * truth + rng.random(n) * noise, 0, 1)
        reference = timeline(np.arange(n)).detected_events(truth)["r"]
        return timeline(np.arange(n), reference=reference), proba

    oof, oof_proba = split(0.5)
    test, test_proba = split(0.9)  # a noisier test split: more false alarms at the same threshold
    curve = threshold_sweep(oof, oof_proba, threshold_grid(oof_proba, 30), STRICT)
    chosen = {
        fa_target_key(t): choose_operating_point(curve, "sensitivity", t, "threshold")
        for t in (5, 1)
    }
    applied = frozen_threshold_scores(test, test_proba, chosen, STRICT)
    for key in chosen:
        assert applied[key]["threshold"] == chosen[key]["threshold"]
        assert applied[key]["fa_target_met"] == (applied[key]["fa_per_24h"] <= float(key))
    assert (
        applied["1"]["fa_per_24h"] > chosen["1"]["fa_per_24h"]
    )  # what a frozen threshold honestly shows


def test_hysteresis_sweep_over_a_grid():
    candidates = hysteresis_candidates(3, [0.0, 0.3], [1, 2])
    assert len(candidates) == 12 and {c["tau_on"] for c in candidates} == {0.25, 0.5, 0.75}
    assert min(c["tau_off"] for c in candidates) == 0.0  # 0.25 - 0.3, floored at 0
    truth = np.zeros(200, dtype=bool)
    truth[[50, 51, 52, 150, 151]] = True
    proba = np.where(truth, 0.9, 0.1)
    proba[100] = 0.8  # a one-epoch blip: min_epochs 2 removes it
    t = timeline(np.arange(200), reference=timeline(np.arange(200)).detected_events(truth)["r"])
    points = hysteresis_sweep(t, proba, candidates, STRICT)
    best = choose_operating_point(points, "f1", None, "tau_on")
    assert best["min_epochs"] == 2 and best["f1"] == 1.0 and best["fa_per_24h"] == 0.0
