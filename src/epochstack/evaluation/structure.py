"""Structure-aware metrics of hypnograms: impossible transitions, bout lengths, edit distance."""

from __future__ import annotations

import numpy as np

from epochstack.evaluation.smoothing import run_lengths


def count_transitions(sequence: np.ndarray, forbidden: set[tuple[int, int]]) -> tuple[int, int]:
    """(forbidden stage changes, all stage changes) between consecutive epochs of one sequence."""
    seq = np.asarray(sequence)
    changes = np.flatnonzero(seq[1:] != seq[:-1])
    pairs = zip(seq[changes].tolist(), seq[changes + 1].tolist(), strict=True)
    return sum(pair in forbidden for pair in pairs), len(changes)


def edit_distance(a: np.ndarray, b: np.ndarray) -> int:
    """Levenshtein distance between two integer sequences (unit costs).

    Written by hand (no maintained Levenshtein package in the stack). Each dynamic-programming row
    is vectorised: the insertion chain ``row[j] = min(row[j], row[j-1] + 1)`` equals
    ``j + cummin(row[k] - k)``.
    """
    a, b = np.asarray(a), np.asarray(b)
    offsets = np.arange(len(b) + 1)
    row = offsets.astype(np.int64)
    for i, symbol in enumerate(a, start=1):
        substitution = row[:-1] + (b != symbol)
        deletion = row[1:] + 1
        candidate = np.r_[i, np.minimum(substitution, deletion)]
        row = offsets + np.minimum.accumulate(candidate - offsets)
    return int(row[-1])


def hypnogram_edit_distance(true_seq: np.ndarray, pred_seq: np.ndarray) -> float:
    """Levenshtein distance of the run-length-compressed sequences, divided by the longer one's length.

    0 means the same order of bouts; 1 means nothing in common.
    """
    true_runs, pred_runs = run_lengths(true_seq)[0], run_lengths(pred_seq)[0]
    longest = max(len(true_runs), len(pred_runs))
    return edit_distance(true_runs, pred_runs) / longest if longest else 0.0


def structure_metrics(
    true_seqs: list[np.ndarray],
    pred_seqs: list[np.ndarray],
    classes: list[str],
    forbidden: list[tuple[str, str]],
    epoch_s: float,
) -> dict:
    """Structure metrics over recordings (integer-coded sequences, one per recording, time order).

    - ``impossible_transitions_per_hour``: forbidden stage changes per hour of scored epochs in
      the prediction; ``impossible_transition_share``: the same changes / all stage changes
      (smoothing removes changes, so the share can rise while the rate falls). ``..._true``:
      the same for the reference (usually 0; a check of the list).
    - ``bout_median_s_{true,pred}.<class>`` and ``bout_length_error_s.<class>`` (predicted minus
      true median bout length, seconds).
    - ``hypnogram_edit_distance``: mean over recordings of :func:`hypnogram_edit_distance`.
    """
    index = {c: k for k, c in enumerate(classes)}
    forbidden_codes = {(index[a], index[b]) for a, b in forbidden if a in index and b in index}
    counts = {"true": np.zeros(2), "pred": np.zeros(2)}
    bouts = {"true": {k: [] for k in index.values()}, "pred": {k: [] for k in index.values()}}
    for kind, seqs in (("true", true_seqs), ("pred", pred_seqs)):
        for seq in seqs:
            counts[kind] += count_transitions(seq, forbidden_codes)
            values, _, lengths = run_lengths(seq)
            for value, length in zip(values.tolist(), lengths.tolist(), strict=True):
                bouts[kind][value].append(length * epoch_s)
    share = {
        kind: float(n_bad / n_all) if n_all else 0.0 for kind, (n_bad, n_all) in counts.items()
    }
    hours = sum(len(seq) for seq in true_seqs) * epoch_s / 3600
    per_hour = {kind: float(counts[kind][0] / hours) if hours else 0.0 for kind in counts}
    medians = {
        kind: {
            c: float(np.median(bouts[kind][k])) if bouts[kind][k] else float("nan")
            for c, k in index.items()
        }
        for kind in bouts
    }
    return {
        "impossible_transitions_per_hour": per_hour["pred"],
        "impossible_transitions_per_hour_true": per_hour["true"],
        "impossible_transition_share": share["pred"],
        "impossible_transition_share_true": share["true"],
        "bout_median_s_true": medians["true"],
        "bout_median_s_pred": medians["pred"],
        "bout_length_error_s": {c: medians["pred"][c] - medians["true"][c] for c in classes},
        "hypnogram_edit_distance": float(
            np.mean(
                [hypnogram_edit_distance(t, p) for t, p in zip(true_seqs, pred_seqs, strict=True)]
            )
        ),
    }
