"""Second-stage event filter: a classifier over detected events that keeps or drops each one.

After hysteresis, every detection (a run of positive epochs) gets event-level features: its
duration and epoch count, the peak and mean of the detector's positive probability, and each
epoch feature aggregated over the detection's epochs (``<feature>_mean``, ``<feature>_max``...).
A random forest learns, on **out-of-fold detections only**, whether a detection is a true one
(it overlaps a reference event widened by the scoring tolerances). OOF detections are filtered by
forests cross-fitted over the CV folds (fold k's detections by a forest trained on the other
folds' detections); test detections by a forest trained on all OOF detections.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from epochstack.errors import InputDataError
from epochstack.evaluation.context import SPLITS
from epochstack.evaluation.event_scores import scoring_parameters, timeline
from epochstack.evaluation.events import EventTimeline, overlaps_any, szcore_scores, widened
from epochstack.evaluation.smoothing import active_runs, hysteresis_decisions

logger = logging.getLogger(__name__)

DETECTION_COLUMNS = ["recording_id", "onset_s", "offset_s", "fold", "is_true"]


def detection_table(
    timeline: EventTimeline,
    active: np.ndarray,
    positive_proba: np.ndarray,
    folds: np.ndarray,
    epoch_features: pd.DataFrame,
    aggregations: list[str],
    tolerance_s: tuple[float, float],
) -> pd.DataFrame:
    """One row per detection of ``active`` (rows of ``timeline``): where it is, its fold, whether it
    is true (overlaps a reference event widened by ``tolerance_s`` = (before, after)), and its
    features. ``epoch_features`` has one row per timeline row (numeric columns)."""
    starts, lengths = active_runs(active, timeline.segments)
    run_of_row = np.repeat(np.arange(len(starts)), lengths)
    rows = (
        np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths, strict=True)])
        if len(starts)
        else np.array([], dtype=np.int64)
    )
    recording = timeline.recording_ids[starts]
    onset = timeline.t_start_s[starts]
    offset = np.array(
        [timeline.t_end_s[s : s + n].max() for s, n in zip(starts, lengths, strict=True)]
    )
    proba = pd.Series(np.asarray(positive_proba, dtype=float)[rows]).groupby(run_of_row)
    table = pd.DataFrame(
        {
            "recording_id": recording,
            "onset_s": onset,
            "offset_s": offset,
            "fold": np.asarray(folds)[starts],
            "is_true": [
                overlaps_any((a, b), widened(timeline.reference[r], *tolerance_s))
                for r, a, b in zip(recording, onset, offset, strict=True)
            ],
            "duration_s": offset - onset,
            "n_epochs": lengths,
            "proba_peak": proba.max().to_numpy() if len(rows) else [],
            "proba_mean": proba.mean().to_numpy() if len(rows) else [],
        }
    )
    aggregated = (
        epoch_features.iloc[rows].reset_index(drop=True).groupby(run_of_row).agg(aggregations)
    )
    aggregated.columns = [f"{feature}_{how}" for feature, how in aggregated.columns]
    return pd.concat([table, aggregated.reset_index(drop=True)], axis=1)


def feature_columns(table: pd.DataFrame) -> list[str]:
    """The columns of a :func:`detection_table` the classifier reads."""
    return [c for c in table.columns if c not in DETECTION_COLUMNS]


def keep_decisions(
    train: pd.DataFrame, apply: pd.DataFrame, settings: dict, seed: int
) -> tuple[np.ndarray, bool]:
    """Keep (True) or drop each detection of ``apply``, by a random forest fitted on ``train``.

    With only one kind of detection (all true or all false) in ``train`` there is nothing to
    learn: the filter abstains and keeps every detection; the second value says so.
    """
    if len(apply) == 0:
        return np.zeros(0, dtype=bool), False
    if train["is_true"].nunique() < 2:
        return np.ones(len(apply), dtype=bool), True
    columns = feature_columns(train)
    forest = RandomForestClassifier(
        n_estimators=settings["n_estimators"],
        min_samples_leaf=settings["min_samples_leaf"],
        class_weight="balanced",
        random_state=seed,
        n_jobs=1,
    )
    forest.fit(train[columns].to_numpy(dtype=float), train["is_true"].to_numpy(dtype=bool))
    true_column = list(forest.classes_).index(True)
    return forest.predict_proba(apply[columns].to_numpy(dtype=float))[:, true_column] >= settings[
        "keep_threshold"
    ], False


def cross_fitted_keep(table: pd.DataFrame, settings: dict, seed: int) -> tuple[np.ndarray, int]:
    """Keep decisions of OOF detections, each fold's by a forest trained on the other folds only;
    and the number of folds where the filter abstained."""
    keep = np.ones(len(table), dtype=bool)
    abstained = 0
    for fold in np.unique(table["fold"]):
        held_out = table["fold"].to_numpy() == fold
        keep[held_out], abstain = keep_decisions(table[~held_out], table[held_out], settings, seed)
        abstained += abstain
    return keep, abstained


def kept_events(table: pd.DataFrame, keep: np.ndarray) -> dict[str, list[tuple[float, float]]]:
    """The kept detections as events per recording."""
    kept = table[keep]
    return {
        rid: list(zip(g["onset_s"].tolist(), g["offset_s"].tolist(), strict=True))
        for rid, g in kept.groupby("recording_id")
    }


def _feature_frame(features: pd.DataFrame, epoch_ids: pd.Series) -> pd.DataFrame:
    table = features.set_index("epoch_id") if "epoch_id" in features.columns else features
    missing = ~epoch_ids.isin(table.index)
    if missing.any():
        raise InputDataError(
            "features",
            f"{int(missing.sum())} scored epochs have no feature row (e.g. {epoch_ids[missing].iloc[0]!r}).",
            "re-run feature_engineering after data_engineering.",
        )
    return table.loc[epoch_ids].select_dtypes("number").reset_index(drop=True)


def filter_events(
    decisions: pd.DataFrame,
    context: dict,
    events: pd.DataFrame,
    features: pd.DataFrame,
    operating_points: dict,
    evaluation: dict,
) -> dict:
    """The filter on the reference model's hysteresis detections: trained on OOF detections only
    (cross-fitted over CV folds for the OOF scores, on all OOF detections for test), with
    any-overlap scores before and after it per split. Empty when off or no events."""
    filter_settings, positive = evaluation["events"]["event_filter"], context["positive_class"]
    if positive is None or not filter_settings.get("enabled"):
        return {}
    timescoring, reference = evaluation["events"]["timescoring"], context["reference_model"]
    point, seed = operating_points[reference]["hysteresis"], evaluation["seed"]
    params = scoring_parameters(timescoring)
    tolerance = (timescoring["tolerance_start_s"], timescoring["tolerance_end_s"])
    tables, timelines = {}, {}
    for split in SPLITS:
        rows = decisions[(decisions["model"] == reference) & (decisions["split"] == split)]
        if rows.empty:
            continue
        timelines[split] = timeline(rows, events, positive)
        tables[split] = detection_table(
            timelines[split],
            hysteresis_decisions(rows, positive, point),
            rows[f"proba_{positive}"].to_numpy(),
            rows["fold"].to_numpy(),
            _feature_frame(features, rows["epoch_id"]),
            filter_settings["aggregations"],
            tolerance,
        )
    train = tables["oof"]
    keep = {"oof": cross_fitted_keep(train, filter_settings, seed)}
    if "test" in tables:
        keep["test"] = keep_decisions(train, tables["test"], filter_settings, seed)
    result = {}
    for split, table in tables.items():
        mask, abstained = keep[split]
        before = timelines[split].detections(kept_events(table, np.ones(len(table), dtype=bool)))
        after = timelines[split].detections(kept_events(table, mask))
        result[split] = {
            "before": szcore_scores(before, params),
            "after": szcore_scores(after, params),
            "n_detections": len(table),
            "n_kept": int(mask.sum()),
            "n_true_detections": int(table["is_true"].sum()),
            "abstained": int(abstained),
            "trained_on": "oof detections (other folds)"
            if split == "oof"
            else "all oof detections",
            "n_training_detections": len(train),
            "n_features": len(feature_columns(table)),
        }
        logger.info(
            "Event filter (%s): %d of %d detections kept; FA/24h %.2f -> %.2f, sensitivity %.3f -> %.3f.",
            split,
            mask.sum(),
            len(table),
            result[split]["before"]["fa_per_24h"],
            result[split]["after"]["fa_per_24h"],
            result[split]["before"]["sensitivity"],
            result[split]["after"]["sensitivity"],
        )
    return result
