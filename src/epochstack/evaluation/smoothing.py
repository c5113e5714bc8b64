"""Temporal smoothing of per-epoch predictions, within contiguous segments of one recording.

A **segment** is a run of epochs with consecutive ``epoch_index`` in one recording: excluded
epochs (artefacts, unlabelled) cut a recording into segments, and nothing here carries state
across a cut.

- HMM / Viterbi: transition matrix and initial distribution from training labels; emissions are
  the model's probabilities divided by its *effective prior* (its mean OOF probability).
- Median filter over a few epochs, on the class probabilities, then argmax.
- Hysteresis (``tau_on`` / ``tau_off``) plus a minimum event length, for binary detection.

:func:`smooth_predictions` applies them to scored rows: HMMs fitted per prediction fold on
training labels only, each model's prior as it predicts, hysteresis at its chosen operating point.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy.ndimage import median_filter

from epochstack.errors import InputDataError
from epochstack.evaluation.metrics import label_indices
from epochstack.models.labels import class_list, proba_columns
from epochstack.models.splits import TEST_FOLD

# Probabilities are floored before the log so a confident zero does not forbid a state forever.
PROBA_FLOOR = 1e-6


def segment_ids(recording_ids: np.ndarray, epoch_index: np.ndarray) -> np.ndarray:
    """Id (0, 1, ...) of the contiguous segment of each row; rows in recording, ``epoch_index`` order.

    A segment starts at a new recording or where ``epoch_index`` does not step by one (a gap of
    excluded epochs).
    """
    recording_ids, epoch_index = np.asarray(recording_ids), np.asarray(epoch_index)
    if len(recording_ids) == 0:
        return np.array([], dtype=np.int64)
    starts = np.r_[True, (recording_ids[1:] != recording_ids[:-1]) | (np.diff(epoch_index) != 1)]
    return np.cumsum(starts) - 1


def segment_slices(segments: np.ndarray) -> list[slice]:
    """Row slices of each segment (``segments`` sorted, as from :func:`segment_ids`)."""
    _, starts, lengths = run_lengths(segments)
    return [slice(int(s), int(s + n)) for s, n in zip(starts, lengths, strict=True)]


def transition_counts(sequences: Iterable[np.ndarray], n_classes: int) -> np.ndarray:
    """Counts of consecutive label pairs ``(from, to)`` over integer-coded label sequences."""
    counts = np.zeros((n_classes, n_classes))
    for seq in sequences:
        seq = np.asarray(seq)
        np.add.at(counts, (seq[:-1], seq[1:]), 1)
    return counts


def hmm_parameters(
    sequences: list[np.ndarray],
    n_classes: int,
    pseudo_count: float = 1.0,
    self_transition_pseudo_count: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Row-stochastic transition matrix and class frequencies estimated from training label sequences.

    ``pseudo_count`` is added to every transition (and class) count so unseen transitions stay
    possible; ``self_transition_pseudo_count`` adds extra weight on staying in a stage. The class
    frequencies are the initial-state distribution of a segment.
    """
    counts = (
        transition_counts(sequences, n_classes)
        + pseudo_count
        + self_transition_pseudo_count * np.eye(n_classes)
    )
    transitions = counts / counts.sum(axis=1, keepdims=True)
    labels = np.concatenate(sequences) if sequences else np.array([], dtype=np.int64)
    class_counts = np.bincount(labels, minlength=n_classes) + pseudo_count
    return transitions, class_counts / class_counts.sum()


def effective_prior(proba: np.ndarray) -> np.ndarray:
    """A model's effective class prior: its mean predicted probability (over OOF epochs).

    A class-weighted or resampled model does not predict with the label frequencies as its prior;
    its mean output is the prior its posteriors actually carry.
    """
    prior = np.clip(np.asarray(proba, dtype=float).mean(axis=0), PROBA_FLOOR, None)
    return prior / prior.sum()


def viterbi(
    log_emission: np.ndarray, log_transition: np.ndarray, log_initial: np.ndarray
) -> np.ndarray:
    """Most likely state path of an HMM (``log_emission`` (T, K)); integer codes (T,).

    Written by hand: the recursion is a dozen lines of numpy and the project's stack has no
    maintained HMM package (hmmlearn is not a dependency).
    """
    n_steps, n_states = log_emission.shape
    backpointers = np.empty((n_steps, n_states), dtype=np.int64)
    score = log_initial + log_emission[0]
    for t in range(1, n_steps):
        candidates = score[:, None] + log_transition  # (from, to)
        backpointers[t] = candidates.argmax(axis=0)
        score = candidates[backpointers[t], np.arange(n_states)] + log_emission[t]
    path = np.empty(n_steps, dtype=np.int64)
    path[-1] = score.argmax()
    for t in range(n_steps - 1, 0, -1):
        path[t - 1] = backpointers[t, path[t]]
    return path


def hmm_smooth(
    proba: np.ndarray, transitions: np.ndarray, initial: np.ndarray, emission_prior: np.ndarray
) -> np.ndarray:
    """Viterbi path of one segment; emissions ``proba / emission_prior`` (scaled likelihoods).

    ``emission_prior`` is the model's :func:`effective_prior`; ``initial`` the training label
    frequencies.
    """
    log_emission = np.log(np.clip(proba, PROBA_FLOOR, 1.0)) - np.log(emission_prior)
    return viterbi(log_emission, np.log(transitions), np.log(initial))


def median_smooth(proba: np.ndarray, window: int = 5) -> np.ndarray:
    """Median of each class probability over ``window`` epochs (edges repeated), then argmax."""
    return median_filter(proba, size=(window, 1), mode="nearest").argmax(axis=1)


def hysteresis(
    positive_proba: np.ndarray, tau_on: float, tau_off: float, segments: np.ndarray | None = None
) -> np.ndarray:
    """Binary timeline: on when the probability reaches ``tau_on``, off when it falls below ``tau_off``.

    Between the two the state holds. Every segment starts off; no state crosses a segment cut.
    Vectorised: the state is that of the last *decisive* epoch (``p >= tau_on`` or
    ``p < tau_off``) of the segment so far.
    """
    if tau_off > tau_on:
        raise ValueError(
            f"hysteresis needs tau_off <= tau_on, got tau_on={tau_on}, tau_off={tau_off}."
        )
    p = np.asarray(positive_proba, dtype=float)
    positions = np.arange(len(p))
    segments = np.zeros(len(p), dtype=np.int64) if segments is None else np.asarray(segments)
    segment_start = (
        np.maximum.accumulate(np.where(np.r_[True, segments[1:] != segments[:-1]], positions, 0))
        if len(p)
        else positions
    )
    decisive = (p >= tau_on) | (p < tau_off)
    last = np.maximum.accumulate(np.where(decisive, positions, -1)) if len(p) else positions
    return (last >= segment_start) & (p[np.maximum(last, 0)] >= tau_on)


def run_lengths(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-length encoding: (value, start index, length) of every run of equal values."""
    values = np.asarray(values)
    if len(values) == 0:
        return values, np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    lengths = np.diff(np.r_[starts, len(values)])
    return values[starts], starts, lengths


def active_runs(
    active: np.ndarray, segments: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(start index, length) of every run of True in ``active``; a segment cut ends a run."""
    active = np.asarray(active, dtype=bool)
    segments = np.zeros(len(active), dtype=np.int64) if segments is None else np.asarray(segments)
    run_id = (
        np.where(
            active,
            np.cumsum(np.r_[True, (active[1:] != active[:-1]) | (segments[1:] != segments[:-1])]),
            0,
        )
        if len(active)
        else active
    )
    values, starts, lengths = run_lengths(run_id)
    return starts[values > 0], lengths[values > 0]


def remove_short_events(
    active: np.ndarray, min_epochs: int, segments: np.ndarray | None = None
) -> np.ndarray:
    """``active`` with runs of True shorter than ``min_epochs`` switched off (runs end at segment cuts)."""
    active = np.asarray(active, dtype=bool).copy()
    starts, lengths = active_runs(active, segments)
    for start, length in zip(
        starts[lengths < min_epochs], lengths[lengths < min_epochs], strict=True
    ):
        active[start : start + length] = False
    return active


def hysteresis_detections(
    positive_proba: np.ndarray, segments: np.ndarray, tau_on: float, tau_off: float, min_epochs: int
) -> np.ndarray:
    """Hysteresis on P(positive), then detections shorter than ``min_epochs`` epochs dropped;
    within segments."""
    return remove_short_events(
        hysteresis(positive_proba, tau_on, tau_off, segments), min_epochs, segments
    )


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
