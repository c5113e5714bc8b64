"""Smoothed decisions of scored rows: HMMs fitted per prediction fold on training labels only,
each model's prior as it predicts, median filtering and hysteresis at a chosen operating point."""

from __future__ import annotations

import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.evaluation.metrics import label_indices
from epochstack.evaluation.smoothing import (
    effective_prior,
    hmm_parameters,
    hmm_smooth,
    hysteresis_detections,
    median_smooth,
    segment_ids,
    segment_slices,
)
from epochstack.models.labels import class_list, proba_columns
from epochstack.models.splits import TEST_FOLD


def _training_sequences(
    epoch_table: pd.DataFrame, folds: pd.DataFrame, classes: list[str]
) -> dict[int, list[np.ndarray]]:
    """Per CV fold: integer label sequences of its recordings, cut at gaps in ``epoch_index``."""
    labelled = epoch_table.dropna(subset=["label"]).merge(
        folds[["epoch_id", "fold"]], on="epoch_id"
    )
    labelled = labelled[labelled["fold"] >= 0].sort_values(["recording_id", "epoch_index"])
    codes = label_indices(labelled["label"].astype(str), classes, "epoch_table.label")
    segments = segment_ids(
        labelled["recording_id"].astype(str).to_numpy(), labelled["epoch_index"].to_numpy()
    )
    folds_of = labelled["fold"].to_numpy()
    sequences: dict[int, list[np.ndarray]] = {}
    for rows in segment_slices(segments):
        sequences.setdefault(int(folds_of[rows.start]), []).append(codes[rows])
    return sequences


def hmm_models(
    epoch_table: pd.DataFrame, folds: pd.DataFrame, smoothing: dict
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """HMM (transitions, initial distribution) per prediction fold, from training labels only.

    OOF epochs of fold k use the labels of the other CV folds; test epochs (fold -1) use all CV
    folds. Held-out test labels are never read.
    """
    classes = class_list(epoch_table)
    sequences = _training_sequences(epoch_table, folds, classes)
    hmm = smoothing["hmm"]

    def fit(train_folds):
        seqs = [s for f in train_folds for s in sequences[f]]
        return hmm_parameters(
            seqs, len(classes), hmm["pseudo_count"], hmm["self_transition_pseudo_count"]
        )

    models = {fold: fit([f for f in sequences if f != fold]) for fold in sequences}
    models[TEST_FOLD] = fit(list(sequences))
    return models


def effective_priors(
    scoring_table: pd.DataFrame, classes: list[str]
) -> dict[str, dict[int, np.ndarray]]:
    """Per model and prediction fold: the model's mean OOF probability over the *other* CV folds
    (all CV folds for test epochs, fold -1), its prior as it predicts."""
    oof = scoring_table[scoring_table["split"] == "oof"]
    priors: dict[str, dict[int, np.ndarray]] = {}
    for model, rows in oof.groupby("model"):
        proba, fold = rows[proba_columns(classes)].to_numpy(dtype=float), rows["fold"].to_numpy()
        priors[model] = {int(k): effective_prior(proba[fold != k]) for k in np.unique(fold)} | {
            TEST_FOLD: effective_prior(proba)
        }
    return priors


def hysteresis_decisions(rows: pd.DataFrame, positive: str, point: dict) -> np.ndarray:
    """Active (positive) epochs of ``rows`` under the hysteresis operating point ``point``."""
    return hysteresis_detections(
        rows[f"proba_{positive}"].to_numpy(),
        rows["segment"].to_numpy(),
        point["tau_on"],
        point["tau_off"],
        point["min_epochs"],
    )


def _segment_decisions(
    table: pd.DataFrame,
    proba: np.ndarray,
    methods: list[str],
    hmm: dict,
    priors: dict,
    smoothing: dict,
) -> dict[str, np.ndarray]:
    """HMM and median decisions (class codes), per contiguous segment in time order."""
    decisions = {m: np.empty(len(table), dtype=np.int64) for m in methods}
    models, splits, fold_of = (
        table["model"].to_numpy(),
        table["split"].to_numpy(),
        table["fold"].to_numpy(),
    )
    for rows in segment_slices(table["segment"].to_numpy()):
        p = proba[rows]
        if "hmm" in methods:
            fold = TEST_FOLD if splits[rows.start] == "test" else int(fold_of[rows.start])
            if fold not in hmm:
                raise InputDataError(
                    "model_predictions",
                    f"OOF rows of fold {fold}, which is not a CV fold of `folds` {sorted(hmm)}.",
                    "re-run stacking with the current folds.",
                )
            decisions["hmm"][rows] = hmm_smooth(p, *hmm[fold], priors[models[rows.start]][fold])
        if "median" in methods:
            decisions["median"][rows] = median_smooth(p, smoothing["median"]["window"])
    return decisions


def smooth_predictions(
    table: pd.DataFrame,
    context: dict,
    operating_points: dict,
    epoch_table: pd.DataFrame,
    folds: pd.DataFrame,
    evaluation: dict,
) -> pd.DataFrame:
    """Adds ``pred_<method>`` columns (class names), computed per contiguous segment in time order.

    ``pred_none`` is the model's own decision. Hysteresis uses each model's operating point
    chosen on its OOF rows; off epochs take the most probable other class.
    """
    classes, methods = context["classes"], context["smoothing_methods"]
    positive, smoothing = context["positive_class"], evaluation["smoothing"]
    hmm = hmm_models(epoch_table, folds, smoothing) if "hmm" in methods else {}
    priors = effective_priors(table, classes) if "hmm" in methods else {}
    proba = table[proba_columns(classes)].to_numpy(dtype=float)
    decisions = _segment_decisions(table, proba, methods, hmm, priors, smoothing)
    if "hysteresis" in methods:
        k = classes.index(positive)
        others = proba.copy()
        others[:, k] = -1  # off epochs take the most probable other class
        for model, idx in table.groupby("model").indices.items():
            active = hysteresis_decisions(
                table.iloc[idx], positive, operating_points[model]["hysteresis"]
            )
            decisions["hysteresis"][idx] = np.where(active, k, others[idx].argmax(axis=1))
    names = np.asarray(classes, dtype=object)
    return table.assign(
        pred_none=table["pred"], **{f"pred_{m}": names[codes] for m, codes in decisions.items()}
    )
