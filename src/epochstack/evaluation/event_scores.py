"""Event scores of detection tasks per model, split and smoothing, with the operating points
frozen on OOF applied to each split, and the reference model's threshold sweeps."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from timescoring.scoring import EventScoring

from epochstack.evaluation import events as ev
from epochstack.evaluation.context import RAW
from epochstack.evaluation.operating_points import scoring_parameters, timeline

logger = logging.getLogger(__name__)

CURVE_COLUMNS = ["split", "threshold", "sensitivity", "fa_per_24h", "precision", "f1"]


def _frozen_at_fa(
    line: ev.EventTimeline, proba: np.ndarray, chosen: dict, params: EventScoring.Parameters
) -> dict:
    return {
        key: {**scores, "chosen_on": "oof"}
        for key, scores in ev.frozen_threshold_scores(line, proba, chosen, params).items()
    }


def _split_events(
    rows: pd.DataFrame,
    line: ev.EventTimeline,
    context: dict,
    at_fa: dict,
    params: EventScoring.Parameters,
    min_iou: float,
) -> dict:
    """One model's event scores on one split: raw, per smoothing method, at the frozen points."""
    positive = context["positive_class"]
    by_method = {}
    for method in [RAW, *context["smoothing_methods"]]:
        detected = line.detected_events(rows[f"pred_{method}"].to_numpy() == positive)
        by_method[method] = ev.event_scores(line.detections(detected), params, min_iou)
    proba = rows[f"proba_{positive}"].to_numpy()
    split_events = by_method.pop(RAW) | {
        "n_unscored_reference_events": line.n_unscored_events,
        "at_fa": _frozen_at_fa(line, proba, at_fa, params),
    }
    return {"events": split_events, "smoothing": {m: {"events": s} for m, s in by_method.items()}}


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
        models.setdefault(model, {})[split] = _split_events(
            rows, line, context, operating_points[model]["at_fa"], params, settings["min_iou"]
        )
        if model == context["reference_model"]:
            proba = rows[f"proba_{positive}"].to_numpy()
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
