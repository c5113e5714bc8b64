"""Event-level scoring of detections (seizures): szCORE any-overlap, TAES, IoU matching, FA/24 h,
and operating points chosen on one split and applied, frozen, to another.

Events are ``(onset_s, offset_s)`` pairs within one recording. Scores are summed over recordings
and then turned into rates, so long recordings weigh more, as false alarms per 24 h should. Only
**scored time** counts: a recording's duration is the time its scored segments cover (gaps of
excluded epochs are not), and reference events that fall entirely in unscored time are left out
(and counted), since no detection could reach them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from timescoring.annotations import Annotation
from timescoring.scoring import EventScoring

from epochstack.evaluation.smoothing import active_runs, hysteresis_detections, segment_ids

SECONDS_PER_DAY = 86400.0
# timescoring's EventScoring rasterises events at a fixed 10 Hz, whatever the Annotation's rate:
# any-overlap is decided to 0.1 s, at most a tenth of an epoch for epochs of 1 s or longer.
TIMESCORING_RESOLUTION_S = 0.1

Events = list[tuple[float, float]]


@dataclass
class RecordingDetections:
    """Reference and detected events of one recording, and its scored duration in seconds."""

    reference: Events
    detected: Events
    duration_s: float


def _rates(tp: float, fp: float, n_reference: float, duration_s: float) -> dict[str, float]:
    nan = float("nan")
    return {
        "sensitivity": tp / n_reference if n_reference else nan,
        "precision": tp / (tp + fp) if tp + fp else nan,
        "f1": 2 * tp / (tp + fp + n_reference) if tp + fp + n_reference else nan,
        "fa_per_24h": fp / duration_s * SECONDS_PER_DAY if duration_s else nan,
    }


def any_overlap_counts(
    detections: RecordingDetections, params: EventScoring.Parameters
) -> tuple[int, int, int]:
    """(true positives, false alarms, reference events) of one recording, by timescoring (szCORE)."""
    end = max(
        [
            detections.duration_s,
            *(e[1] for e in detections.reference),
            *(e[1] for e in detections.detected),
        ]
    )
    n_seconds = max(1, math.ceil(end))
    # The 1 Hz Annotation only sets the timeline's length: EventScoring re-rasterises the event
    # lists at its own 10 Hz.
    scores = EventScoring(
        Annotation(detections.reference, 1, n_seconds),
        Annotation(detections.detected, 1, n_seconds),
        params,
    )
    return int(scores.tp), int(scores.fp), int(scores.refTrue)


def szcore_scores(
    recordings: list[RecordingDetections], params: EventScoring.Parameters
) -> dict[str, float]:
    """szCORE any-overlap event scoring (timescoring) summed over recordings; FA/24 h over scored time."""
    return _summed_scores(
        [any_overlap_counts(r, params) for r in recordings], sum(r.duration_s for r in recordings)
    )


def _summed_scores(counts: list[tuple[int, int, int]], duration_s: float) -> dict[str, float]:
    tp, fp, n_ref = np.sum(counts, axis=0) if counts else (0, 0, 0)
    return {
        **_rates(tp, fp, n_ref, duration_s),
        "n_reference_events": int(n_ref),
        "n_false_alarms": int(fp),
        "hours": duration_s / 3600,
    }


def _overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return min(a[1], b[1]) > max(a[0], b[0])


def _hit_and_false_alarm(ref: tuple[float, float], hyp: tuple[float, float]) -> tuple[float, float]:
    """NEDC ``calc_hf``: the share of ``ref`` that ``hyp`` covers, and the part of ``hyp`` outside
    ``ref`` relative to ``ref``'s duration, capped at 1."""
    ref_duration = ref[1] - ref[0]
    hit = (min(ref[1], hyp[1]) - max(ref[0], hyp[0])) / ref_duration
    outside = max(0.0, ref[0] - hyp[0]) + max(0.0, hyp[1] - ref[1])
    return hit, min(1.0, outside / ref_duration)


def taes_counts(reference: Events, detected: Events) -> tuple[float, float, float]:
    """Time-aligned event scoring (TAES) of one recording: fractional (hits, misses, false alarms).

    Written by hand after NEDC's ``nedc_eval_taes`` (Shah et al., 2021; timescoring has no TAES).
    Reference events are visited in time order; each is scored against the first unused
    detection it overlaps:

    - if that detection runs past the event's end, the pair scores ``calc_hf`` (hit = covered
      share of the event, false alarm = part of the detection outside it / event duration, at
      most 1), and **every later event the same detection overlaps is a full miss**;
    - otherwise every later detection overlapping the event is consumed too, adding its hit and
      false alarm to the event (two detections on one event share its credit).

    Each event and detection is used once. Events never reached add a miss of 1, unused
    detections a false alarm of 1. ``hits + misses`` equals the number of reference events.
    """
    reference, detected = sorted(reference), sorted(detected)
    ref_open, hyp_open = [True] * len(reference), [True] * len(detected)
    hits = misses = false_alarms = 0.0
    for i, ref in enumerate(reference):
        if not ref_open[i]:
            continue
        j = next((j for j, hyp in enumerate(detected) if hyp_open[j] and _overlaps(ref, hyp)), None)
        if j is None:
            continue
        hit, false_alarm = _hit_and_false_alarm(ref, detected[j])
        ref_open[i] = hyp_open[j] = False
        if detected[j][1] >= ref[1]:  # one detection over this event and maybe the next ones
            later = [
                k
                for k in range(i + 1, len(reference))
                if ref_open[k] and _overlaps(reference[k], detected[j])
            ]
            for k in later:
                ref_open[k] = False
            misses += len(later)
        else:  # this event may hold several detections
            for k in range(j + 1, len(detected)):
                if hyp_open[k] and _overlaps(ref, detected[k]):
                    extra_hit, extra_false_alarm = _hit_and_false_alarm(ref, detected[k])
                    hit, false_alarm = hit + extra_hit, false_alarm + extra_false_alarm
                    hyp_open[k] = False
        hits, misses, false_alarms = hits + hit, misses + 1.0 - hit, false_alarms + false_alarm
    return hits, misses + sum(ref_open), false_alarms + sum(hyp_open)


def taes_scores(recordings: list[RecordingDetections]) -> dict[str, float]:
    """TAES sensitivity, precision, F1 and false alarms per 24 h (scored time), summed over recordings."""
    hits, misses, false_alarms = (
        np.sum([taes_counts(r.reference, r.detected) for r in recordings], axis=0)
        if recordings
        else (0, 0, 0)
    )
    return _rates(
        float(hits),
        float(false_alarms),
        float(hits + misses),
        sum(r.duration_s for r in recordings),
    )


def iou_matrix(reference: Events, detected: Events) -> np.ndarray:
    """Intersection over union of every (reference, detected) pair of events."""
    ref = np.asarray(reference, dtype=float).reshape(-1, 2)
    hyp = np.asarray(detected, dtype=float).reshape(-1, 2)
    inter = np.clip(
        np.minimum(ref[:, None, 1], hyp[None, :, 1]) - np.maximum(ref[:, None, 0], hyp[None, :, 0]),
        0,
        None,
    )
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
    return {
        "precision": scores["precision"],
        "recall": scores["sensitivity"],
        "f1": scores["f1"],
        "min_iou": min_iou,
    }


def event_scores(
    recordings: list[RecordingDetections], params: EventScoring.Parameters, min_iou: float
) -> dict:
    """Any-overlap (szCORE) scores, with TAES and IoU matching beside them."""
    return szcore_scores(recordings, params) | {
        "taes": taes_scores(recordings),
        "iou": iou_scores(recordings, min_iou),
    }


def widened(events: Events, before_s: float, after_s: float) -> Events:
    """Events widened by a tolerance before their onset and after their offset."""
    return [(onset - before_s, offset + after_s) for onset, offset in events]


def overlaps_any(event: tuple[float, float], others: Events) -> bool:
    """True when ``event`` overlaps at least one of ``others``."""
    return any(_overlaps(event, other) for other in others)


@dataclass
class EventTimeline:
    """The epochs of one split (rows in recording, ``epoch_index`` order) and the reference events
    of their recordings: turns per-epoch decisions into per-recording detections.

    ``duration_s`` per recording is its scored time (the span of each contiguous segment, summed);
    reference events that overlap no scored segment are dropped and counted in ``n_unscored_events``.
    """

    recording_ids: np.ndarray
    segments: np.ndarray
    t_start_s: np.ndarray
    t_end_s: np.ndarray
    reference: dict[str, Events]
    duration_s: dict[str, float]
    n_unscored_events: int
    # Any-overlap counts per (recording, detections, scoring parameters): many operating points
    # of a sweep give the same detections in a recording, and timescoring is the costly part.
    _counts: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls, recording_ids, epoch_index, t_start_s, duration_s, reference: dict[str, Events]
    ) -> EventTimeline:
        recording_ids = np.asarray(recording_ids, dtype=str)
        segments = segment_ids(recording_ids, epoch_index)
        t_start = np.asarray(t_start_s, dtype=float)
        t_end = t_start + np.asarray(duration_s, dtype=float)
        spans: dict[str, list[tuple[float, float]]] = {}
        for first, last in _segment_bounds(segments):
            spans.setdefault(str(recording_ids[first]), []).append(
                (t_start[first], t_end[first : last + 1].max())
            )
        scored, n_unscored = {}, 0
        for rid, segment_spans in spans.items():
            events = reference.get(rid, [])
            scored[rid] = [e for e in events if overlaps_any(e, segment_spans)]
            n_unscored += len(events) - len(scored[rid])
        duration = {rid: float(sum(end - start for start, end in s)) for rid, s in spans.items()}
        return cls(recording_ids, segments, t_start, t_end, scored, duration, n_unscored)

    @property
    def recordings(self) -> list[str]:
        return list(self.duration_s)

    def detected_events(self, active: np.ndarray) -> dict[str, Events]:
        """Runs of consecutive active epochs within a segment, as events, per recording."""
        events: dict[str, Events] = {rid: [] for rid in self.recordings}
        starts, lengths = active_runs(active, self.segments)
        for start, length in zip(starts, lengths, strict=True):
            events[str(self.recording_ids[start])].append(
                (float(self.t_start_s[start]), float(self.t_end_s[start : start + length].max()))
            )
        return events

    def detections(self, detected: dict[str, Events]) -> list[RecordingDetections]:
        """Reference and ``detected`` events of every recording, with its scored duration."""
        return [
            RecordingDetections(self.reference[rid], detected.get(rid, []), self.duration_s[rid])
            for rid in self.recordings
        ]

    def score(self, active: np.ndarray, params: EventScoring.Parameters) -> dict[str, float]:
        """Any-overlap scores (as :func:`szcore_scores`) of the detections ``active`` (one bool per row) makes."""
        counts = []
        for recording in self.detections(self.detected_events(active)):
            key = (
                tuple(recording.detected),
                tuple(recording.reference),
                recording.duration_s,
                tuple(vars(params).values()),
            )
            if key not in self._counts:
                self._counts[key] = any_overlap_counts(recording, params)
            counts.append(self._counts[key])
        return _summed_scores(counts, sum(self.duration_s.values()))


def _segment_bounds(segments: np.ndarray) -> list[tuple[int, int]]:
    """(first row, last row) of each segment."""
    if len(segments) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, segments[1:] != segments[:-1]])
    return list(zip(starts.tolist(), (np.r_[starts[1:], len(segments)] - 1).tolist(), strict=True))


def threshold_grid(positive_proba: np.ndarray, n_thresholds: int) -> np.ndarray:
    """Thresholds on P(positive): an even grid on [0, 1] plus as many quantiles of the probabilities.

    Events are rare, so quantiles alone crowd near 0 and skip the useful range (measured: every FA
    target then gave the top threshold only); the grid alone misses the fine steps near 0.
    """
    grid = np.linspace(0, 1, n_thresholds)
    return (
        np.unique(np.concatenate([grid, np.quantile(positive_proba, grid)]))
        if len(positive_proba)
        else grid
    )


def sweep(
    timeline: EventTimeline,
    candidates: list[dict],
    decide: Callable[[dict], np.ndarray],
    params: EventScoring.Parameters,
) -> list[dict]:
    """Any-overlap sensitivity, FA/24 h, precision and F1 of each candidate operating point
    (``decide(candidate)`` gives its per-epoch decisions)."""
    points = []
    for candidate in candidates:
        scores = timeline.score(decide(candidate), params)
        points.append(
            {
                **candidate,
                **{k: scores[k] for k in ("sensitivity", "fa_per_24h", "precision", "f1")},
            }
        )
    return points


def threshold_sweep(
    timeline: EventTimeline,
    positive_proba: np.ndarray,
    thresholds: np.ndarray,
    params: EventScoring.Parameters,
) -> list[dict]:
    """:func:`sweep` of plain thresholds on P(positive): an epoch is positive when ``p >= threshold``."""
    return sweep(
        timeline,
        [{"threshold": float(t)} for t in thresholds],
        lambda c: positive_proba >= c["threshold"],
        params,
    )


def hysteresis_candidates(
    n_tau_on: int, tau_off_gaps: list[float], min_epochs: list[int]
) -> list[dict]:
    """Hysteresis settings to sweep: ``tau_on`` on an even grid inside (0, 1), ``tau_off = tau_on - gap``
    (at least 0) for each gap, and each minimum detection length in epochs."""
    tau_on = np.linspace(0, 1, n_tau_on + 2)[1:-1]
    return [
        {
            "tau_on": round(float(on), 6),
            "tau_off": round(max(0.0, float(on) - gap), 6),
            "min_epochs": int(n),
        }
        for on in tau_on
        for gap in tau_off_gaps
        for n in min_epochs
    ]


def hysteresis_sweep(
    timeline: EventTimeline,
    positive_proba: np.ndarray,
    candidates: list[dict],
    params: EventScoring.Parameters,
) -> list[dict]:
    """:func:`sweep` of hysteresis settings (``tau_on``, ``tau_off``, ``min_epochs``) within the timeline's segments."""
    return sweep(
        timeline,
        candidates,
        lambda c: hysteresis_detections(
            positive_proba, timeline.segments, c["tau_on"], c["tau_off"], c["min_epochs"]
        ),
        params,
    )


def frozen_threshold_scores(
    timeline: EventTimeline,
    positive_proba: np.ndarray,
    chosen: dict[str, dict],
    params: EventScoring.Parameters,
) -> dict[str, dict]:
    """Scores on this timeline of thresholds chosen elsewhere (``chosen``: false-alarm target key ->
    point with a ``threshold``), and whether each target's FA/24 h is met here."""
    result = {}
    for key, point in chosen.items():
        scores = timeline.score(positive_proba >= point["threshold"], params)
        result[key] = {
            "threshold": point["threshold"],
            **{k: scores[k] for k in ("sensitivity", "fa_per_24h", "precision")},
            "fa_target_met": bool(scores["fa_per_24h"] <= float(key.replace("_", "."))),
        }
    return result


OBJECTIVES = ("sensitivity", "f1")


def choose_operating_point(
    points: list[dict], objective: str, max_fa_per_24h: float | None, prefer_high: str
) -> dict:
    """The point with the best ``objective`` among those with FA/24 h <= ``max_fa_per_24h``.

    Ties go to fewer false alarms, then to the higher ``prefer_high`` value (the stricter
    threshold). When no point meets the limit, the one with the fewest false alarms is returned.
    ``meets_fa_limit`` says which case it is. The caller passes one split's points only (OOF):
    whatever it returns is then frozen.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r} is not one of {OBJECTIVES}.")

    def score(value) -> float:
        return value if value is not None and np.isfinite(value) else -np.inf

    limit = np.inf if max_fa_per_24h is None else max_fa_per_24h
    admissible = [p for p in points if p["fa_per_24h"] <= limit]
    if admissible:
        best = max(
            admissible, key=lambda p: (score(p[objective]), -p["fa_per_24h"], p[prefer_high])
        )
    else:
        best = min(points, key=lambda p: (p["fa_per_24h"], -p[prefer_high]))
    return {**best, "meets_fa_limit": bool(admissible)}


def fa_target_key(target: float) -> str:
    """Key of a false-alarm target in metrics.json: ``10``, ``2_5`` (dots would read as nesting)."""
    return f"{target:g}".replace(".", "_")
