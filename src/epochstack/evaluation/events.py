"""Event-level scoring of detections (seizures): szCORE any-overlap, TAES, IoU matching, FA/24 h.

Events are ``(onset_s, offset_s)`` pairs within one recording. Scores are summed over recordings
and then turned into rates, so long recordings weigh more, as false alarms per 24 h should.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from timescoring.annotations import Annotation
from timescoring.scoring import EventScoring

from epochstack.evaluation.smoothing import run_lengths

SECONDS_PER_DAY = 86400.0

Events = list[tuple[float, float]]


@dataclass
class RecordingDetections:
    """Reference and detected events of one recording, and its scored duration in seconds."""

    reference: Events
    detected: Events
    duration_s: float


def epochs_to_events(active: np.ndarray, t_start_s: np.ndarray, duration_s: np.ndarray) -> Events:
    """Merge runs of consecutive positive epochs (time order, no gap between them) into events."""
    active = np.asarray(active, dtype=bool)
    t_start_s, t_end_s = np.asarray(t_start_s, float), np.asarray(t_start_s, float) + np.asarray(duration_s, float)
    # a gap (excluded epochs) between two positive epochs splits the event
    contiguous = np.r_[False, np.isclose(t_start_s[1:], t_end_s[:-1])]
    run_id = np.cumsum(~active | ~contiguous)
    values, starts, lengths = run_lengths(np.where(active, run_id, -1))
    return [(float(t_start_s[s]), float(t_end_s[s + n - 1])) for v, s, n in zip(values, starts, lengths, strict=True) if v >= 0]


def _rates(tp: float, fp: float, n_reference: float, duration_s: float) -> dict[str, float]:
    nan = float("nan")
    return {
        "sensitivity": tp / n_reference if n_reference else nan,
        "precision": tp / (tp + fp) if tp + fp else nan,
        "f1": 2 * tp / (tp + fp + n_reference) if tp + fp + n_reference else nan,
        "fa_per_24h": fp / duration_s * SECONDS_PER_DAY if duration_s else nan,
    }


def any_overlap_counts(detections: RecordingDetections, params: EventScoring.Parameters) -> tuple[int, int, int]:
    """(true positives, false alarms, reference events) of one recording, by timescoring (szCORE)."""
    n_seconds = max(1, math.ceil(detections.duration_s))
    ref = Annotation(detections.reference, 1, n_seconds)
    hyp = Annotation(detections.detected, 1, n_seconds)
    scores = EventScoring(ref, hyp, params)
    return int(scores.tp), int(scores.fp), int(scores.refTrue)


def szcore_scores(recordings: list[RecordingDetections], params: EventScoring.Parameters) -> dict[str, float]:
    """szCORE any-overlap event scoring (timescoring) summed over recordings."""
    tp, fp, n_ref = np.sum([any_overlap_counts(r, params) for r in recordings], axis=0) if recordings else (0, 0, 0)
    duration = sum(r.duration_s for r in recordings)
    return {**_rates(tp, fp, n_ref, duration), "n_reference_events": int(n_ref), "n_false_alarms": int(fp), "hours": duration / 3600}


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def taes_counts(reference: Events, detected: Events) -> tuple[float, float, float]:
    """Time-aligned event scoring (TAES) of one recording: fractional (hits, misses, false alarms).

    Written by hand after the NEDC definition (Shah et al., 2021; timescoring has no TAES).
    Each detection is scored against the first reference event it overlaps: it contributes
    ``overlap / ref duration`` to that event's hit, and the part of it outside the event,
    ``/ ref duration``, to false alarms (at most 1 per pair). A reference event's hit is capped
    at 1 and its miss is ``1 - hit``. A detection overlapping no reference event is one false
    alarm.
    """
    hits = np.zeros(len(reference))
    false_alarms = 0.0
    for hyp in detected:
        overlapping = [i for i, ref in enumerate(reference) if _overlap(ref, hyp) > 0]
        if not overlapping:
            false_alarms += 1.0
            continue
        ref = reference[overlapping[0]]
        ref_duration = ref[1] - ref[0]
        overlap = _overlap(ref, hyp)
        hits[overlapping[0]] += overlap / ref_duration
        false_alarms += min(1.0, (hyp[1] - hyp[0] - overlap) / ref_duration)
    hits = np.minimum(hits, 1.0)
    return float(hits.sum()), float(len(reference) - hits.sum()), false_alarms


def taes_scores(recordings: list[RecordingDetections]) -> dict[str, float]:
    """TAES sensitivity, precision, F1 and false alarms per 24 h, summed over recordings."""
    hits, _, false_alarms = np.sum([taes_counts(r.reference, r.detected) for r in recordings], axis=0) if recordings else (0, 0, 0)
    n_ref = sum(len(r.reference) for r in recordings)
    return _rates(float(hits), float(false_alarms), n_ref, sum(r.duration_s for r in recordings))


def iou_matrix(reference: Events, detected: Events) -> np.ndarray:
    """Intersection over union of every (reference, detected) pair of events."""
    ref = np.asarray(reference, dtype=float).reshape(-1, 2)
    hyp = np.asarray(detected, dtype=float).reshape(-1, 2)
    inter = np.clip(np.minimum(ref[:, None, 1], hyp[None, :, 1]) - np.maximum(ref[:, None, 0], hyp[None, :, 0]), 0, None)
    union = (ref[:, 1] - ref[:, 0])[:, None] + (hyp[:, 1] - hyp[:, 0])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou_matches(reference: Events, detected: Events, min_iou: float) -> int:
    """Number of one-to-one matches with IoU >= ``min_iou`` (optimal assignment maximising IoU)."""
    iou = iou_matrix(reference, detected)
    if iou.size == 0:
        return 0
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return int((iou[rows, cols] >= min_iou).sum())


def iou_scores(recordings: list[RecordingDetections], min_iou: float) -> dict[str, float]:
    """IoU-matched precision, recall (sensitivity) and F1 over recordings."""
    tp = sum(iou_matches(r.reference, r.detected, min_iou) for r in recordings)
    n_ref = sum(len(r.reference) for r in recordings)
    n_hyp = sum(len(r.detected) for r in recordings)
    scores = _rates(tp, n_hyp - tp, n_ref, sum(r.duration_s for r in recordings))
    return {"precision": scores["precision"], "recall": scores["sensitivity"], "f1": scores["f1"], "min_iou": min_iou}


def sensitivity_fa_curve(
    reference: list[Events],
    positive_proba: list[np.ndarray],
    t_start_s: list[np.ndarray],
    duration_s: list[np.ndarray],
    durations_s: list[float],
    thresholds: np.ndarray,
    params: EventScoring.Parameters,
) -> list[dict[str, float]]:
    """Any-overlap sensitivity and false alarms per 24 h at each threshold on the positive probability."""
    curve = []
    for threshold in thresholds:
        recordings = [
            RecordingDetections(ref, epochs_to_events(p >= threshold, t, d), total)
            for ref, p, t, d, total in zip(reference, positive_proba, t_start_s, duration_s, durations_s, strict=True)
        ]
        scores = szcore_scores(recordings, params)
        curve.append({"threshold": float(threshold), "sensitivity": scores["sensitivity"], "fa_per_24h": scores["fa_per_24h"]})
    return curve


def sensitivity_at_fa(curve: list[dict[str, float]], fa_targets: list[float]) -> dict[str, float]:
    """Best sensitivity among thresholds whose false-alarm rate is at most each target.

    Keys ``sensitivity_at_<target>fa`` (``2.5`` written ``2_5``); NaN when no threshold qualifies.
    """
    results = {}
    for target in fa_targets:
        admissible = [p["sensitivity"] for p in curve if p["fa_per_24h"] <= target and np.isfinite(p["sensitivity"])]
        results[f"sensitivity_at_{str(target).replace('.', '_').removesuffix('_0')}fa"] = max(admissible) if admissible else float("nan")
    return results
