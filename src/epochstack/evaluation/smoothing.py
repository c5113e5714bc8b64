"""Temporal smoothing of per-epoch predictions within one recording (epochs in time order).

- HMM / Viterbi: transition matrix and class priors estimated from training labels, per-epoch
  probabilities divided by the priors as emission scores (scaled likelihoods).
- Median filter over a few epochs, on the class probabilities, then argmax.
- Hysteresis (``tau_on`` / ``tau_off``) plus a minimum event length, for binary detection.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.ndimage import median_filter

# Probabilities are floored before the log so a confident zero does not forbid a state forever.
PROBA_FLOOR = 1e-6


def transition_counts(sequences: Iterable[np.ndarray], n_classes: int) -> np.ndarray:
    """Counts of consecutive label pairs ``(from, to)`` over integer-coded label sequences."""
    counts = np.zeros((n_classes, n_classes))
    for seq in sequences:
        seq = np.asarray(seq)
        np.add.at(counts, (seq[:-1], seq[1:]), 1)
    return counts


def hmm_parameters(
    sequences: list[np.ndarray], n_classes: int, pseudo_count: float = 1.0, self_transition_pseudo_count: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Row-stochastic transition matrix and class priors estimated from training label sequences.

    ``pseudo_count`` is added to every transition (and class) count so unseen transitions stay
    possible; ``self_transition_pseudo_count`` adds extra weight on staying in a stage.
    """
    counts = transition_counts(sequences, n_classes) + pseudo_count + self_transition_pseudo_count * np.eye(n_classes)
    transitions = counts / counts.sum(axis=1, keepdims=True)
    labels = np.concatenate(sequences) if sequences else np.array([], dtype=np.int64)
    class_counts = np.bincount(labels, minlength=n_classes) + pseudo_count
    return transitions, class_counts / class_counts.sum()


def viterbi(log_emission: np.ndarray, log_transition: np.ndarray, log_initial: np.ndarray) -> np.ndarray:
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


def hmm_smooth(proba: np.ndarray, transitions: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Viterbi path of one recording, emissions ``proba / prior`` (the classifier's scaled likelihoods)."""
    log_emission = np.log(np.clip(proba, PROBA_FLOOR, 1.0)) - np.log(priors)
    return viterbi(log_emission, np.log(transitions), np.log(priors))


def median_smooth(proba: np.ndarray, window: int = 5) -> np.ndarray:
    """Median of each class probability over ``window`` epochs (edges repeated), then argmax."""
    return median_filter(proba, size=(window, 1), mode="nearest").argmax(axis=1)


def hysteresis(positive_proba: np.ndarray, tau_on: float, tau_off: float) -> np.ndarray:
    """Binary timeline: switch on when the probability reaches ``tau_on``, off when it falls below ``tau_off``."""
    if tau_off > tau_on:
        raise ValueError(f"hysteresis needs tau_off <= tau_on, got tau_on={tau_on}, tau_off={tau_off}.")
    active = np.zeros(len(positive_proba), dtype=bool)
    state = False
    for t, p in enumerate(positive_proba):
        state = p >= tau_off if state else p >= tau_on
        active[t] = state
    return active


def run_lengths(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-length encoding: (value, start index, length) of every run of equal values."""
    values = np.asarray(values)
    if len(values) == 0:
        return values, np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    lengths = np.diff(np.r_[starts, len(values)])
    return values[starts], starts, lengths


def remove_short_events(active: np.ndarray, min_epochs: int) -> np.ndarray:
    """``active`` with runs of True shorter than ``min_epochs`` switched off."""
    active = np.asarray(active, dtype=bool).copy()
    values, starts, lengths = run_lengths(active)
    for start, length in zip(starts[values & (lengths < min_epochs)], lengths[values & (lengths < min_epochs)], strict=True):
        active[start : start + length] = False
    return active
