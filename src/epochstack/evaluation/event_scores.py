"""Event scores of detection tasks: event timelines of scored rows, the operating points chosen
on OOF rows only (the hysteresis that best meets the objective, a threshold per false-alarm
target), and event scores per model, split and smoothing at those frozen points."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from timescoring.scoring import EventScoring

from epochstack.evaluation import events as ev
from epochstack.evaluation.context import RAW

logger = logging.getLogger(__name__)

CURVE_COLUMNS = ["split", "threshold", "sensitivity", "fa_per_24h", "precision", "f1"]


def scoring_parameters(timescoring: dict) -> EventScoring.Parameters:
    """timescoring's any-overlap parameters from ``evaluation.events.timescoring``."""
    return EventScoring.Parameters(
        toleranceStart=timescoring["tolerance_start_s"],
        toleranceEnd=timescoring["tolerance_end_s"],
        minOverlap=timescoring["min_overlap"],
        maxEventDuration=timescoring["max_event_duration_s"],
        minDurationBetweenEvents=timescoring["min_duration_between_events_s"],
    )


def _reference_events(
    rows: pd.DataFrame, events: pd.DataFrame, positive: str
) -> dict[str, ev.Events]:
    """Annotated events per recording; derived from epoch labels when ``events`` is empty."""
    if len(events):
        selected = events[events["label"].astype(str) == positive]
        return {
            rid: list(
                zip(
                    e["onset_s"].astype(float),
                    (e["onset_s"] + e["duration_s"]).astype(float),
                    strict=True,
                )
            )
            for rid, e in selected.groupby(selected["recording_id"].astype(str))
        }
    timeline = ev.EventTimeline.build(
        rows["recording_id"], rows["epoch_index"], rows["t_start_s"], rows["duration_s"], {}
    )
    return timeline.detected_events(rows["label"].to_numpy() == positive)


def timeline(rows: pd.DataFrame, events: pd.DataFrame, positive: str) -> ev.EventTimeline:
    """The event timeline of scored ``rows`` with the reference events of class ``positive``."""
    return ev.EventTimeline.build(
        rows["recording_id"],
        rows["epoch_index"],
        rows["t_start_s"],
        rows["duration_s"],
        _reference_events(rows, events, positive),
    )


def choose_operating_points(
    table: pd.DataFrame, context: dict, events: pd.DataFrame, evaluation: dict
) -> dict:
    """Per model, on its **OOF** rows only: the hysteresis (tau_on, tau_off, min_epochs) that best
    meets ``smoothing.hysteresis.objective``, and for each false-alarm target the threshold on
    P(positive) with the best sensitivity within it. Frozen: test rows are never read here.
    Empty for tasks without a positive class."""
    positive = context["positive_class"]
    if positive is None:
        return {}
    settings, hyst = evaluation["events"], evaluation["smoothing"]["hysteresis"]
    params = scoring_parameters(settings["timescoring"])
    points = {}
    oof = table[table["split"] == "oof"]
    for model, rows in oof.groupby("model", sort=True):
        line = timeline(rows, events, positive)
        proba = rows[f"proba_{positive}"].to_numpy()
        curve = ev.threshold_sweep(
            line, proba, ev.threshold_grid(proba, settings["n_thresholds"]), params
        )
        at_fa = {
            ev.fa_target_key(t): ev.choose_operating_point(curve, "sensitivity", t, "threshold")
            for t in settings["fa_targets"]
        }
        candidates = ev.hysteresis_candidates(
            hyst["n_tau_on"], hyst["tau_off_gaps"], hyst["min_epochs"]
        )
        grid = ev.hysteresis_sweep(line, proba, candidates, params)
        chosen = ev.choose_operating_point(
            grid, hyst["objective"], hyst.get("max_fa_per_24h"), "tau_on"
        )
        epoch_s = float(rows["duration_s"].median())
        points[model] = {
            "at_fa": at_fa,
            "hysteresis": {
                **chosen,
                "min_duration_s": chosen["min_epochs"] * epoch_s,
                "objective": hyst["objective"],
            },
        }
        logger.info(
            "%s: hysteresis chosen on OOF: tau_on %.2f, tau_off %.2f, min %d epochs (OOF sensitivity %.3f, %.2f FA/24h).",
            model,
            chosen["tau_on"],
            chosen["tau_off"],
            chosen["min_epochs"],
            chosen["sensitivity"],
            chosen["fa_per_24h"],
        )
    return points


def _frozen_at_fa(
    line: ev.EventTimeline, proba: np.ndarray, chosen: dict, params: EventScoring.Parameters
) -> dict:
    return {
        key: {**scores, "chosen_on": "oof"}
        for key, scores in ev.frozen_threshold_scores(line, proba, chosen, params).items()
    }


def compute_event_metrics(
    decisions: pd.DataFrame,
    context: dict,
    events: pd.DataFrame,
    operating_points: dict,
    evaluation: dict,
) -> tuple[dict, pd.DataFrame]:
    """Event metrics per model, split and smoothing (detection tasks), the
    frozen false-alarm operating points applied to each split, and the reference model's
    threshold sweeps on both splits (the test sweep is a diagnostic curve: nothing is chosen on
    it). Empty for tasks without a positive class."""
    positive = context["positive_class"]
    if positive is None:
        return {"models": {}}, pd.DataFrame(columns=CURVE_COLUMNS)
    settings = evaluation["events"]
    params = scoring_parameters(settings["timescoring"])
    models: dict[str, dict] = {}
    curves = []
    for (model, split), rows in decisions.groupby(["model", "split"], sort=True):
        line = timeline(rows, events, positive)
        if line.n_unscored_events and model == context["reference_model"]:
            logger.warning(
                "%s: %d reference events lie entirely in unscored time (excluded epochs): not scored.",
                split,
                line.n_unscored_events,
            )
        proba = rows[f"proba_{positive}"].to_numpy()
        by_method = {}
        for method in [RAW, *context["smoothing_methods"]]:
            detected = line.detected_events(rows[f"pred_{method}"].to_numpy() == positive)
            by_method[method] = ev.event_scores(
                line.detections(detected), params, settings["min_iou"]
            )
        split_events = by_method.pop(RAW) | {
            "n_unscored_reference_events": line.n_unscored_events,
            "at_fa": _frozen_at_fa(line, proba, operating_points[model]["at_fa"], params),
        }
        models.setdefault(model, {})[split] = {
            "events": split_events,
            "smoothing": {m: {"events": s} for m, s in by_method.items()},
        }
        if model == context["reference_model"]:
            curve = ev.threshold_sweep(
                line, proba, ev.threshold_grid(proba, settings["n_thresholds"]), params
            )
            curves.append(pd.DataFrame(curve).assign(split=split))
    fa_curve = (
        pd.concat(curves, ignore_index=True)[CURVE_COLUMNS]
        if curves
        else pd.DataFrame(columns=CURVE_COLUMNS)
    )
    return {"models": models}, fa_curve
