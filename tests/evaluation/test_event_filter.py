"""Second-stage event filter: event features, cross-fitted on OOF detections, applied to test."""

import numpy as np
import pandas as pd

from epochstack.evaluation.event_filter import (
    cross_fitted_keep,
    detection_table,
    feature_columns,
    keep_decisions,
    kept_events,
)
from epochstack.evaluation.events import EventTimeline

SETTINGS = {"n_estimators": 50, "min_samples_leaf": 1, "keep_threshold": 0.5}
EPOCH_S = 10.0


def recordings(n_recordings=8, n_epochs=600, seed=0):
    """Per recording: three true seizures (long, confident, high `motion` feature) and three
    false detections (short, hesitant, low `motion`), one CV fold per two recordings."""
    rng = np.random.default_rng(seed)
    rows, reference = [], {}
    for r in range(n_recordings):
        proba = rng.uniform(0, 0.2, n_epochs)
        motion = rng.normal(0, 1, n_epochs)
        onsets = rng.choice(np.arange(10, n_epochs - 10, 20), 6, replace=False)
        reference[f"rec{r}"] = []
        for i, onset in enumerate(onsets):
            true = i < 3
            length = 5 if true else 1
            proba[onset : onset + length] = (
                rng.uniform(0.8, 1.0, length) if true else rng.uniform(0.55, 0.7, length)
            )
            motion[onset : onset + length] += 4 if true else 0
            if true:
                reference[f"rec{r}"].append((onset * EPOCH_S, (onset + length) * EPOCH_S))
        rows.append(
            pd.DataFrame(
                {
                    "recording_id": f"rec{r}",
                    "epoch_index": np.arange(n_epochs),
                    "fold": r // 2,
                    "proba": proba,
                    "motion": motion,
                    "noise": rng.normal(0, 1, n_epochs),
                }
            )
        )
    table = pd.concat(rows, ignore_index=True)
    timeline = EventTimeline.build(
        table.recording_id,
        table.epoch_index,
        table.epoch_index * EPOCH_S,
        np.full(len(table), EPOCH_S),
        reference,
    )
    return table, timeline


def detections(table, timeline):
    return detection_table(
        timeline,
        table.proba.to_numpy() >= 0.5,
        table.proba.to_numpy(),
        table.fold.to_numpy(),
        table[["motion", "noise"]],
        ["mean", "max"],
        (0.0, 0.0),
    )


def test_detection_features_and_labels():
    table, timeline = recordings(n_recordings=2)
    found = detections(table, timeline)
    assert len(found) == 12 and found.is_true.sum() == 6
    true = found[found.is_true]
    assert (
        (true.n_epochs == 5).all()
        and (true.duration_s == 50.0).all()
        and (true.proba_peak >= 0.8).all()
    )
    assert set(feature_columns(found)) == {
        "duration_s",
        "n_epochs",
        "proba_peak",
        "proba_mean",
        "motion_mean",
        "motion_max",
        "noise_mean",
        "noise_max",
    }
    assert found.loc[~found.is_true, "proba_mean"].max() <= 0.7


def test_cross_fitted_filter_drops_false_detections_and_keeps_true_ones():
    table, timeline = recordings()
    found = detections(table, timeline)
    keep, abstained = cross_fitted_keep(found, SETTINGS, seed=0)
    assert abstained == 0
    assert (
        keep[found.is_true.to_numpy()].mean() > 0.9 and keep[~found.is_true.to_numpy()].mean() < 0.1
    )
    kept = kept_events(found, keep)
    assert sum(len(v) for v in kept.values()) == keep.sum()


def test_filter_decisions_never_read_the_labels_of_the_detections_they_filter():
    table, timeline = recordings()
    found = detections(table, timeline)
    train, test = found[found.fold < 3], found[found.fold == 3]
    first, _ = keep_decisions(train, test, SETTINGS, seed=0)
    flipped, _ = keep_decisions(train, test.assign(is_true=~test.is_true), SETTINGS, seed=0)
    assert (first == flipped).all()


def test_filter_abstains_when_training_detections_are_all_true():
    table, timeline = recordings(n_recordings=2)
    found = detections(table, timeline)
    only_true = found[found.is_true]
    keep, abstained = keep_decisions(only_true, found, SETTINGS, seed=0)
    assert abstained and keep.all()
    assert keep_decisions(only_true, found.iloc[:0], SETTINGS, seed=0)[0].shape == (0,)


def test_no_detections_give_an_empty_table():
    table, timeline = recordings(n_recordings=1)
    empty = detection_table(
        timeline,
        np.zeros(len(table), dtype=bool),
        table.proba.to_numpy(),
        table.fold.to_numpy(),
        table[["motion"]],
        ["mean"],
        (0.0, 0.0),
    )
    assert len(empty) == 0 and "motion_mean" in empty.columns
