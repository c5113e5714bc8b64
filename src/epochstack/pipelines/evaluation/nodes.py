"""Nodes of the evaluation pipeline: thin calls into ``epochstack.evaluation``.

Order: scoring table -> context (settings checked) -> operating points chosen on OOF ->
smoothing -> epoch metrics, event metrics (frozen operating points), event filter, paired
comparisons -> metrics.json, MLflow, plots, report.
"""

from __future__ import annotations

import logging
import math

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from timescoring.scoring import EventScoring

from epochstack.errors import InputDataError, ParameterError
from epochstack.evaluation import event_filter as ef
from epochstack.evaluation import events as ev
from epochstack.evaluation import plots
from epochstack.evaluation.calibration import reliability_curves
from epochstack.evaluation.comparisons import conclusion, paired_comparison
from epochstack.evaluation.metrics import (
    CONFUSION_SCORES,
    bootstrap_intervals,
    confusion_counts,
    label_indices,
    label_metrics,
    per_subject_metrics,
    probability_metrics,
    summarise_subjects,
    too_few_subjects,
)
from epochstack.evaluation.report import render_report
from epochstack.evaluation.smoothing import (
    effective_prior,
    hmm_parameters,
    hmm_smooth,
    hysteresis_detections,
    median_smooth,
    segment_ids,
    segment_slices,
)
from epochstack.evaluation.structure import structure_metrics
from epochstack.models.labels import class_list, proba_columns
from epochstack.models.splits import TEST_FOLD
from epochstack.tracking import headline_metrics

logger = logging.getLogger(__name__)

SPLITS = ("oof", "test")
RAW = "none"
PREDICTION_COLUMNS = ["epoch_id", "fold", "model", "split", "pred"]
EPOCH_COLUMNS = [
    "epoch_id",
    "recording_id",
    "subject_id",
    "epoch_index",
    "t_start_s",
    "duration_s",
    "label",
]
SMOOTHING_METHODS = ("hmm", "median", "hysteresis")
PROTOCOLS = ("nested", "non_nested")
# What each split's numbers estimate (``estimate`` in metrics.json), see docs/metrics.md.
ESTIMATES = {
    "test": "held_out",
    "oof:nested": "oof_nested",
    "oof:non_nested": "oof_selection_biased",
}


def _require_columns(frame: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputDataError(
            name, f"missing columns {missing}.", f"re-run the pipeline that writes {name}."
        )


# --- scoring table and context ------------------------------------------------------------------


def build_scoring_table(
    model_predictions: pd.DataFrame, epoch_table: pd.DataFrame, evaluation: dict
) -> tuple[pd.DataFrame, int]:
    """Predictions joined to labels, recordings and times, sorted by model, split, recording, time,
    with a ``segment`` id per contiguous run of epochs (excluded epochs cut segments); and the
    number of unlabelled epochs, which cannot be scored and are excluded (and logged).
    """
    classes = class_list(epoch_table)
    _require_columns(
        model_predictions, PREDICTION_COLUMNS + proba_columns(classes), "model_predictions"
    )
    _require_columns(epoch_table, EPOCH_COLUMNS, "epoch_table")
    wanted = evaluation.get("models")
    predictions = (
        model_predictions[model_predictions["model"].isin(wanted)] if wanted else model_predictions
    )
    table = predictions.merge(
        epoch_table[EPOCH_COLUMNS],
        on="epoch_id",
        how="left",
        validate="many_to_one",
        indicator="_joined",
    )
    unknown = table["_joined"] == "left_only"
    if unknown.any():
        raise InputDataError(
            "model_predictions",
            f"{unknown.sum()} rows have epoch_ids absent from epoch_table (e.g. {table.epoch_id[unknown].iloc[0]!r}).",
            "re-run stacking on the current epoch_table.",
        )
    unlabelled = table["label"].isna()
    n_unlabelled = int(table.loc[unlabelled, "epoch_id"].nunique())
    if n_unlabelled:
        logger.warning(
            "Excluded %d unlabelled epochs from scoring (they cut smoothing and events into segments).",
            n_unlabelled,
        )
    table = table[~unlabelled].drop(columns="_joined")
    table = table.astype(
        {
            "model": str,
            "split": str,
            "label": str,
            "pred": str,
            "recording_id": str,
            "subject_id": str,
        }
    )
    label_indices(table["pred"], classes, "model_predictions.pred")
    table = table.sort_values(["model", "split", "recording_id", "epoch_index"], ignore_index=True)
    series = table["model"] + "\0" + table["split"] + "\0" + table["recording_id"]
    table["segment"] = segment_ids(series.to_numpy(), table["epoch_index"].to_numpy())
    logger.info("Scoring %d models: %s", table["model"].nunique(), sorted(table["model"].unique()))
    return table, n_unlabelled


def positive_class(events: pd.DataFrame, classes: list[str], evaluation: dict) -> str | None:
    """The detection class: ``events.positive_class`` if set, else the one label of ``events``."""
    configured = evaluation["events"].get("positive_class")
    if configured is not None:
        if configured not in classes:
            raise ParameterError(
                "evaluation.events.positive_class",
                f"{configured!r} is not a class {classes}.",
                "set one of the epoch labels or null.",
            )
        return configured
    labels = sorted(set(events["label"].astype(str)) & set(classes)) if len(events) else []
    return labels[0] if len(labels) == 1 else None


def forbidden_transitions(
    evaluation: dict, label_mapping: str, classes: list[str]
) -> list[tuple[str, str]]:
    """Impossible stage changes for this label mapping (``structure.impossible_transitions``,
    a list or a mapping keyed by ``dataset.label_mapping``); names that are not classes are
    warned about, naming them, and their pairs ignored."""
    setting = evaluation["structure"]["impossible_transitions"]
    source = "evaluation.structure.impossible_transitions"
    if isinstance(setting, dict):
        source = f"{source}.{label_mapping}"
        setting = setting.get(label_mapping, [])
    pairs = [tuple(map(str, pair)) for pair in setting or []]
    _warn_unknown_classes(source, {name for pair in pairs for name in pair}, classes)
    return [pair for pair in pairs if set(pair) <= set(classes)]


def _warn_unknown_classes(source: str, names: set[str], classes: list[str]) -> None:
    unknown = sorted(names - set(classes))
    if unknown:
        logger.warning(
            "%s names %s, which are not classes of this dataset %s: ignored.",
            source,
            unknown,
            classes,
        )


def _check_settings(evaluation: dict) -> None:
    """Wrong values in the evaluation parameters, named before anything is computed."""
    hyst, comparisons = evaluation["smoothing"]["hysteresis"], evaluation["comparisons"]
    checks = [  # (parameter, value, valid, fix)
        (
            "smoothing.hysteresis.objective",
            hyst["objective"],
            hyst["objective"] in ev.OBJECTIVES,
            f"use one of {list(ev.OBJECTIVES)}.",
        ),
        (
            "smoothing.hysteresis.n_tau_on",
            hyst["n_tau_on"],
            int(hyst["n_tau_on"]) >= 1,
            "use at least 1.",
        ),
        (
            "smoothing.hysteresis.tau_off_gaps",
            hyst["tau_off_gaps"],
            bool(hyst["tau_off_gaps"]) and all(0 <= g < 1 for g in hyst["tau_off_gaps"]),
            "list gaps in [0, 1).",
        ),
        (
            "smoothing.hysteresis.min_epochs",
            hyst["min_epochs"],
            bool(hyst["min_epochs"]) and all(int(n) >= 1 for n in hyst["min_epochs"]),
            "list whole numbers >= 1.",
        ),
        (
            "comparisons.metrics",
            comparisons["metrics"],
            bool(comparisons["metrics"]) and set(comparisons["metrics"]) <= set(CONFUSION_SCORES),
            f"list some of {list(CONFUSION_SCORES)}.",
        ),
        (
            "bootstrap.min_subjects",
            evaluation["bootstrap"]["min_subjects"],
            int(evaluation["bootstrap"]["min_subjects"]) >= 2,
            "use at least 2 (10 recommended).",
        ),
    ]
    for name, value, valid, fix in checks:
        if not valid:
            raise ParameterError(f"evaluation.{name}", f"is {value!r}.", fix)


def evaluation_context(
    scoring_table: pd.DataFrame,
    n_unlabelled: int,
    epoch_table: pd.DataFrame,
    events: pd.DataFrame,
    evaluation: dict,
    label_mapping: str,
    stack_report: dict,
) -> dict:
    """Settings checked once, before anything is scored: protocol (the one the models were
    trained under, from the stack report), smoothing methods, reference model, positive class,
    impossible transitions for ``dataset.label_mapping``, class names in targets (a warning
    names unknown ones)."""
    classes = class_list(epoch_table)
    _check_settings(evaluation)
    protocol = stack_report.get("protocol")
    if protocol not in PROTOCOLS:
        raise InputDataError(
            "stack_report", f"records protocol {protocol!r}.", "re-run the stacking pipeline."
        )
    methods = list(evaluation["smoothing"]["methods"])
    unknown = sorted(set(methods) - set(SMOOTHING_METHODS))
    if unknown:
        raise ParameterError(
            "evaluation.smoothing.methods",
            f"unknown methods {unknown}.",
            f"use any of {list(SMOOTHING_METHODS)}.",
        )
    models = sorted(scoring_table["model"].unique())
    reference = evaluation["reference_model"]
    if reference not in models:
        raise InputDataError(
            "model_predictions",
            f"no predictions of the reference model {reference!r} (models: {models}).",
            "run stacking, or set evaluation.reference_model.",
        )
    positive = positive_class(events, classes, evaluation)
    if positive is None and "hysteresis" in methods:
        methods.remove("hysteresis")
    shortest_epoch_s = (
        float(scoring_table["duration_s"].min()) if len(scoring_table) else float("nan")
    )
    if positive is not None and shortest_epoch_s / 10 < ev.TIMESCORING_RESOLUTION_S:
        logger.warning(
            "Epochs of %.2f s: any-overlap scoring resolves %.1f s (timescoring's 10 Hz), coarser than a tenth of an epoch.",
            shortest_epoch_s,
            ev.TIMESCORING_RESOLUTION_S,
        )
    needs_oof = positive is not None or "hmm" in methods
    without_oof = sorted(
        set(models) - set(scoring_table.loc[scoring_table["split"] == "oof", "model"])
    )
    if needs_oof and without_oof:
        raise InputDataError(
            "model_predictions",
            f"models {without_oof} have no OOF rows: their HMM prior and operating points must come from OOF.",
            "re-run stacking (every model writes OOF predictions).",
        )
    _warn_unknown_classes(
        "evaluation.targets.f1_per_class",
        set((evaluation.get("targets") or {}).get("f1_per_class") or {}),
        classes,
    )
    return {
        "classes": classes,
        "protocol": protocol,
        "models": models,
        "reference_model": reference,
        "smoothing_methods": methods,
        "positive_class": positive,
        "forbidden_transitions": forbidden_transitions(evaluation, label_mapping, classes),
        "label_mapping": label_mapping,
        "n_unlabelled_excluded": n_unlabelled,
        "stack": {
            **{k: stack_report.get(k) for k in ("selected", "stacked_models", "left_out")},
            **{k: stack_report[k] for k in ("noise_z",) if k in stack_report},
        },
    }


# --- operating points, chosen on OOF -------------------------------------------------------------


def _scoring_parameters(timescoring: dict) -> EventScoring.Parameters:
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


def _timeline(rows: pd.DataFrame, events: pd.DataFrame, positive: str) -> ev.EventTimeline:
    return ev.EventTimeline.build(
        rows["recording_id"],
        rows["epoch_index"],
        rows["t_start_s"],
        rows["duration_s"],
        _reference_events(rows, events, positive),
    )


def _hysteresis_decisions(rows: pd.DataFrame, positive: str, point: dict) -> np.ndarray:
    return hysteresis_detections(
        rows[f"proba_{positive}"].to_numpy(),
        rows["segment"].to_numpy(),
        point["tau_on"],
        point["tau_off"],
        point["min_epochs"],
    )


def choose_operating_points(
    scoring_table: pd.DataFrame, context: dict, events: pd.DataFrame, evaluation: dict
) -> dict:
    """Per model, on its **OOF** rows only: the hysteresis (tau_on, tau_off, min_epochs) that best
    meets ``smoothing.hysteresis.objective``, and for each false-alarm target the threshold on
    P(positive) with the best sensitivity within it. Frozen: test rows are never read here.
    Empty for tasks without a positive class."""
    positive = context["positive_class"]
    if positive is None:
        return {}
    settings, params = (
        evaluation["events"],
        _scoring_parameters(evaluation["events"]["timescoring"]),
    )
    hyst = evaluation["smoothing"]["hysteresis"]
    points = {}
    oof = scoring_table[scoring_table["split"] == "oof"]
    for model, rows in oof.groupby("model", sort=True):
        timeline = _timeline(rows, events, positive)
        proba = rows[f"proba_{positive}"].to_numpy()
        curve = ev.threshold_sweep(
            timeline, proba, ev.threshold_grid(proba, settings["n_thresholds"]), params
        )
        at_fa = {
            ev.fa_target_key(t): ev.choose_operating_point(curve, "sensitivity", t, "threshold")
            for t in settings["fa_targets"]
        }
        candidates = ev.hysteresis_candidates(
            hyst["n_tau_on"], hyst["tau_off_gaps"], hyst["min_epochs"]
        )
        grid = ev.hysteresis_sweep(timeline, proba, candidates, params)
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


# --- smoothing -----------------------------------------------------------------------------------


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


def smooth_predictions(
    scoring_table: pd.DataFrame,
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
    classes, methods, positive = (
        context["classes"],
        context["smoothing_methods"],
        context["positive_class"],
    )
    smoothing = evaluation["smoothing"]
    hmm = hmm_models(epoch_table, folds, smoothing) if "hmm" in methods else {}
    priors = effective_priors(scoring_table, classes) if "hmm" in methods else {}
    proba = scoring_table[proba_columns(classes)].to_numpy(dtype=float)
    decisions = {m: np.empty(len(scoring_table), dtype=np.int64) for m in methods}
    segments = scoring_table["segment"].to_numpy()
    models, splits, fold_of = (
        scoring_table["model"].to_numpy(),
        scoring_table["split"].to_numpy(),
        scoring_table["fold"].to_numpy(),
    )
    for rows in segment_slices(segments):
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
        for model, idx in scoring_table.groupby("model").indices.items():
            active = _hysteresis_decisions(
                scoring_table.iloc[idx], positive, operating_points[model]["hysteresis"]
            )
            decisions["hysteresis"][idx] = np.where(active, k, others[idx].argmax(axis=1))
    names = np.asarray(classes, dtype=object)
    return scoring_table.assign(
        pred_none=scoring_table["pred"],
        **{f"pred_{m}": names[codes] for m, codes in decisions.items()},
    )


# --- epoch metrics -------------------------------------------------------------------------------


def _codes(rows: pd.DataFrame, column: str, classes: list[str]) -> np.ndarray:
    return label_indices(rows[column], classes, column)


def _sequences(codes: np.ndarray, segments: np.ndarray) -> list[np.ndarray]:
    """Per-segment code sequences (rows are in segment order)."""
    return [codes[rows] for rows in segment_slices(segments)]


def _split_metrics(
    rows: pd.DataFrame, context: dict, evaluation: dict, estimate: str
) -> tuple[dict, list[pd.DataFrame]]:
    """Raw and smoothed metrics of one model on one split, and its per-subject tables."""
    classes, methods = context["classes"], context["smoothing_methods"]
    epoch_s = float(rows["duration_s"].median())
    segments, subjects = rows["segment"].to_numpy(), rows["subject_id"].to_numpy()
    y_true = _codes(rows, "label", classes)
    true_seqs = _sequences(y_true, segments)
    boot = evaluation["bootstrap"]
    result: dict = {"estimate": estimate, "smoothing": {}}
    tables = []
    for method in [RAW, *methods]:
        y_pred = _codes(rows, f"pred_{method}", classes)
        scores = label_metrics(y_true, y_pred, classes)
        scores["structure"] = structure_metrics(
            true_seqs,
            _sequences(y_pred, segments),
            classes,
            context["forbidden_transitions"],
            epoch_s,
        )
        table = per_subject_metrics(y_true, y_pred, subjects, classes)
        tables.append(table.assign(smoothing=method))
        if method == RAW:
            scores["per_subject"] = summarise_subjects(table)
            scores |= probability_metrics(
                y_true,
                rows[proba_columns(classes)].to_numpy(dtype=float),
                classes,
                evaluation["calibration"]["n_bins"],
            )
            reason = too_few_subjects(len(table), boot["min_subjects"])
            scores["ci"] = (
                None
                if reason
                else bootstrap_intervals(
                    y_true,
                    y_pred,
                    subjects,
                    classes,
                    boot["n_boot"],
                    boot["level"],
                    evaluation["seed"],
                )
            )
            scores["ci_reason"] = reason
            result |= scores
        else:  # epoch and support counts are those of the raw entry
            result["smoothing"][method] = {
                k: v for k, v in scores.items() if k not in ("n_epochs", "support_per_class")
            }
    return result, tables


def compute_epoch_metrics(
    decisions: pd.DataFrame, context: dict, evaluation: dict
) -> tuple[dict, pd.DataFrame]:
    """Epoch, calibration, structure and per-subject metrics per model and split (raw and
    smoothed), intervals only with enough subjects; and the per-subject table."""
    models: dict[str, dict] = {}
    subject_tables = []
    for (model, split), rows in decisions.groupby(["model", "split"], sort=True):
        estimate = ESTIMATES["test"] if split == "test" else ESTIMATES[f"oof:{context['protocol']}"]
        models.setdefault(model, {})[split], tables = _split_metrics(
            rows, context, evaluation, estimate
        )
        subject_tables += [t.assign(model=model, split=split) for t in tables]
    per_subject = pd.concat(subject_tables, ignore_index=True)
    columns = ["model", "split", "smoothing", "subject_id", "n_epochs"]
    return {"models": models}, per_subject[
        columns + [c for c in per_subject.columns if c not in columns]
    ]


# --- event metrics -------------------------------------------------------------------------------


def _frozen_at_fa(
    timeline: ev.EventTimeline, proba: np.ndarray, chosen: dict, params: EventScoring.Parameters
) -> dict:
    return {
        key: {**scores, "chosen_on": "oof"}
        for key, scores in ev.frozen_threshold_scores(timeline, proba, chosen, params).items()
    }


def compute_event_metrics(
    decisions: pd.DataFrame,
    context: dict,
    events: pd.DataFrame,
    operating_points: dict,
    evaluation: dict,
) -> tuple[dict, pd.DataFrame]:
    """Event metrics per model, split and smoothing (detection tasks), the frozen false-alarm
    operating points applied to each split, and the reference model's threshold sweeps on both
    splits (the test sweep is a diagnostic curve: nothing is chosen on it)."""
    positive = context["positive_class"]
    curve_columns = ["split", "threshold", "sensitivity", "fa_per_24h", "precision", "f1"]
    if positive is None:
        return {"models": {}}, pd.DataFrame(columns=curve_columns)
    settings = evaluation["events"]
    params = _scoring_parameters(settings["timescoring"])
    models: dict[str, dict] = {}
    curves = []
    for (model, split), rows in decisions.groupby(["model", "split"], sort=True):
        timeline = _timeline(rows, events, positive)
        if timeline.n_unscored_events and model == context["reference_model"]:
            logger.warning(
                "%s: %d reference events lie entirely in unscored time (excluded epochs): not scored.",
                split,
                timeline.n_unscored_events,
            )
        proba = rows[f"proba_{positive}"].to_numpy()
        by_method = {}
        for method in [RAW, *context["smoothing_methods"]]:
            detected = timeline.detected_events(rows[f"pred_{method}"].to_numpy() == positive)
            by_method[method] = ev.event_scores(
                timeline.detections(detected), params, settings["min_iou"]
            )
        split_events = by_method.pop(RAW) | {
            "n_unscored_reference_events": timeline.n_unscored_events,
            "at_fa": _frozen_at_fa(timeline, proba, operating_points[model]["at_fa"], params),
        }
        models.setdefault(model, {})[split] = {
            "events": split_events,
            "smoothing": {m: {"events": s} for m, s in by_method.items()},
        }
        if model == context["reference_model"]:
            curve = ev.threshold_sweep(
                timeline, proba, ev.threshold_grid(proba, settings["n_thresholds"]), params
            )
            curves.append(pd.DataFrame(curve).assign(split=split))
    fa_curve = (
        pd.concat(curves, ignore_index=True)[curve_columns]
        if curves
        else pd.DataFrame(columns=curve_columns)
    )
    return {"models": models}, fa_curve


# --- second-stage event filter -------------------------------------------------------------------


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
    """The second-stage event filter on the reference model's hysteresis detections: trained on
    OOF detections only (cross-fitted over CV folds for the OOF scores, on all OOF detections for
    test), with any-overlap scores before and after it per split. Empty when off or no events."""
    settings, positive = evaluation["events"]["event_filter"], context["positive_class"]
    if positive is None or not settings.get("enabled"):
        return {}
    timescoring = evaluation["events"]["timescoring"]
    params, tolerance = (
        _scoring_parameters(timescoring),
        (timescoring["tolerance_start_s"], timescoring["tolerance_end_s"]),
    )
    reference = context["reference_model"]
    point = operating_points[reference]["hysteresis"]
    tables, timelines = {}, {}
    for split in SPLITS:
        rows = decisions[(decisions["model"] == reference) & (decisions["split"] == split)]
        if rows.empty:
            continue
        timelines[split] = _timeline(rows, events, positive)
        tables[split] = ef.detection_table(
            timelines[split],
            _hysteresis_decisions(rows, positive, point),
            rows[f"proba_{positive}"].to_numpy(),
            rows["fold"].to_numpy(),
            _feature_frame(features, rows["epoch_id"]),
            settings["aggregations"],
            tolerance,
        )
    train = tables["oof"]
    keep = {"oof": ef.cross_fitted_keep(train, settings, evaluation["seed"])}
    if "test" in tables:
        keep["test"] = ef.keep_decisions(train, tables["test"], settings, evaluation["seed"])
    result = {}
    for split, table in tables.items():
        mask, abstained = keep[split]
        before = timelines[split].detections(ef.kept_events(table, np.ones(len(table), dtype=bool)))
        after = timelines[split].detections(ef.kept_events(table, mask))
        result[split] = {
            "before": ev.szcore_scores(before, params),
            "after": ev.szcore_scores(after, params),
            "n_detections": len(table),
            "n_kept": int(mask.sum()),
            "n_true_detections": int(table["is_true"].sum()),
            "abstained": int(abstained),
            "trained_on": "oof detections (other folds)"
            if split == "oof"
            else "all oof detections",
            "n_training_detections": len(train),
            "n_features": len(ef.feature_columns(table)),
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


# --- paired comparisons --------------------------------------------------------------------------


def comparison_splits(comparisons: dict, protocol: str) -> list[str]:
    """Splits whose subjects the comparisons use: ``auto`` is OOF + test when nested, test alone
    when non_nested (selection-biased OOF predictions would favour the tuned models)."""
    splits = comparisons.get("splits", "auto")
    if splits == "auto":
        return ["oof", "test"] if protocol == "nested" else ["test"]
    if not splits or not set(splits) <= set(SPLITS):
        raise ParameterError(
            "evaluation.comparisons.splits", f"is {splits!r}.", "use auto or a list of oof / test."
        )
    return list(splits)


def compare_models(
    decisions: pd.DataFrame, context: dict, epoch_metrics: dict, evaluation: dict
) -> dict:
    """Paired subject-level comparisons (raw decisions): the reference model against every other
    model (the best base model, chosen on OOF, among them) and ``extra_pairs``."""
    settings = evaluation["comparisons"]
    metrics = list(settings["metrics"])
    reference, models = context["reference_model"], context["models"]
    splits = comparison_splits(settings, context["protocol"])
    base = [m for m in models if m != reference]
    oof_score = {
        m: epoch_metrics["models"][m].get("oof", {}).get(metrics[0], float("nan")) for m in base
    }
    best_base = (
        max(base, key=lambda m: (np.nan_to_num(oof_score[m], nan=-np.inf), m)) if base else None
    )
    # the pre-specified comparison (reference vs the best base model) first, then the others
    ordered = sorted(base, key=lambda m: m != best_base)
    pairs = [(reference, m) for m in ordered] + [
        tuple(p) for p in settings.get("extra_pairs") or []
    ]
    unknown = sorted({m for pair in pairs for m in pair} - set(models))
    if unknown:
        raise ParameterError(
            "evaluation.comparisons.extra_pairs",
            f"names models {unknown} without predictions (models: {models}).",
            "name scored models.",
        )
    rows = decisions[decisions["split"].isin(splits)]
    boot = evaluation["bootstrap"]
    comparisons = {}
    for a, b in pairs:
        paired = rows[rows["model"] == a].merge(
            rows[rows["model"] == b], on=["epoch_id", "split"], suffixes=("_a", "_b")
        )
        classes = context["classes"]
        result = paired_comparison(
            _codes(paired, "label_a", classes),
            _codes(paired, "pred_none_a", classes),
            _codes(paired, "pred_none_b", classes),
            paired["subject_id_a"].to_numpy(),
            len(classes),
            metrics,
            boot,
            evaluation["seed"],
            settings["n_permutations"],
        )
        comparisons[f"{a}_vs_{b}"] = {
            name: entry | {"conclusion": conclusion(entry, a, b, settings["alpha"])}
            for name, entry in result.items()
        }
    return {
        "comparisons": comparisons,
        "best_base_model": best_base,
        "splits": splits,
        "metrics": metrics,
        "alpha": settings["alpha"],
    }


# --- metrics.json, MLflow ------------------------------------------------------------------------


def _json_safe(value):
    """NaN and infinities become null (strict JSON for DVC); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def assemble_metrics(
    epoch_metrics: dict,
    event_metrics: dict,
    event_filter: dict,
    comparisons: dict,
    operating_points: dict,
    decisions: pd.DataFrame,
    context: dict,
    evaluation: dict,
) -> dict:
    """The metrics.json document: ``models.<name>.<split>.*`` for every model; top-level
    ``test.*`` / ``oof.*`` are the reference model's raw predictions (no smoothing);
    ``comparisons.<a>_vs_<b>.<metric>.*``; ``protocol``; ``stack.selected`` (what the stack is:
    one base model, a weighted average or a logistic regression) and the models it stacks."""
    models = {
        model: {split: dict(scores) for split, scores in splits.items()}
        for model, splits in epoch_metrics["models"].items()
    }
    for model, splits in event_metrics["models"].items():
        for split, scores in splits.items():
            block = models[model][split]
            block["events"] = scores["events"]
            block["smoothing"] = {
                m: {**s, **scores["smoothing"].get(m, {})} for m, s in block["smoothing"].items()
            }
    for model, points in operating_points.items():
        models[model]["operating_points"] = {"chosen_on": "oof", "hysteresis": points["hysteresis"]}
    reference = context["reference_model"]
    for split, result in event_filter.items():
        models[reference][split]["events"]["event_filter"] = result
    split_counts = decisions.groupby("split")["epoch_id"].nunique()
    info = {
        "reference_model": reference,
        "best_base_model": comparisons["best_base_model"],
        "top_level_smoothing": RAW,
        "smoothing_methods": context["smoothing_methods"],
        "positive_class": context["positive_class"],
        "label_mapping": context["label_mapping"],
        "impossible_transitions": [list(p) for p in context["forbidden_transitions"]],
        "n_test_epochs": int(split_counts.get("test", 0)),
        "n_oof_epochs": int(split_counts.get("oof", 0)),
        "n_unlabelled_excluded": context["n_unlabelled_excluded"],
        "bootstrap_level": evaluation["bootstrap"]["level"],
        "bootstrap_min_subjects": evaluation["bootstrap"]["min_subjects"],
        "comparisons": {k: comparisons[k] for k in ("splits", "metrics", "alpha")},
    }
    document = {
        "protocol": context["protocol"],
        "stack": context["stack"],
        "info": info,
        **{split: models[reference].get(split, {}) for split in SPLITS},
        "comparisons": comparisons["comparisons"],
        "models": models,
    }
    return _json_safe(document)


def log_metrics_to_mlflow(metrics: dict) -> None:
    """The headline numbers of metrics.json as MLflow metrics (``test.cohen_kappa``, ``oof.macro_f1``,
    ``models.hgb.oof.cohen_kappa``... see :func:`epochstack.tracking.headline_metrics`); the
    long tail (per class, per subject, smoothing, comparisons) is in the logged metrics.json.

    One batched ``mlflow.log_metrics`` call: MlflowMetricsHistoryDataset logs metric by metric.
    """
    if mlflow.active_run() is None:
        logger.info("No active MLflow run: metrics not logged.")
        return
    flat = headline_metrics(metrics)
    mlflow.log_metrics(flat)
    mlflow.set_tags(
        {
            "evaluation.reference_model": metrics["info"]["reference_model"],
            "evaluation.top_level_smoothing": RAW,
            "evaluation.protocol": metrics["protocol"],
            "evaluation.oof_estimate": metrics["oof"].get("estimate", "none"),
        }
    )
    logger.info("Logged %d evaluation metrics to MLflow.", len(flat))


# --- plots and report ----------------------------------------------------------------------------


def confusion_pairs(decisions: pd.DataFrame, evaluation: dict) -> pd.DataFrame:
    """``actual, predicted`` of the reference model's raw test predictions (for ``dvc plots``)."""
    rows = decisions[
        (decisions["model"] == evaluation["reference_model"]) & (decisions["split"] == "test")
    ]
    return pd.DataFrame(
        {"actual": rows["label"].to_numpy(), "predicted": rows["pred_none"].to_numpy()}
    )


def _hypnogram_rows(rows: pd.DataFrame, recording: str | None) -> pd.DataFrame:
    recordings = rows["recording_id"].unique()
    if recording is not None and recording not in recordings:
        raise ParameterError(
            "evaluation.plots.hypnogram_recording",
            f"{recording!r} is not a test recording ({list(recordings)}).",
            "set a test recording_id or null.",
        )
    return rows[rows["recording_id"] == (recording or recordings[0])]


def make_plots(
    decisions: pd.DataFrame,
    context: dict,
    metrics: dict,
    per_subject: pd.DataFrame,
    fa_curve: pd.DataFrame,
    evaluation: dict,
) -> tuple[dict[str, Figure], list[str]]:
    """PNG figures by file name (and the names): confusion matrices, hypnogram, reliability,
    per-subject bars, model comparison, paired comparisons and (detection tasks) sensitivity vs
    FA/24h with the frozen operating points."""
    classes, reference = context["classes"], context["reference_model"]
    ref_rows = decisions[decisions["model"] == reference]
    figures: dict[str, Figure] = {}
    for split in SPLITS:
        rows = ref_rows[ref_rows["split"] == split]
        if not rows.empty:
            cm = confusion_counts(
                _codes(rows, "label", classes), _codes(rows, "pred_none", classes), len(classes)
            )
            figures[f"confusion_{split}.png"] = plots.confusion_figure(
                cm, classes, f"{reference}, {split} (raw)"
            )
    test_rows = ref_rows[ref_rows["split"] == "test"]
    if not test_rows.empty:
        y_true, proba = (
            _codes(test_rows, "label", classes),
            test_rows[proba_columns(classes)].to_numpy(dtype=float),
        )
        curves = reliability_curves(y_true, proba, classes, evaluation["calibration"]["n_bins"])
        figures["reliability_test.png"] = plots.reliability_figure(
            curves, metrics["test"]["ece_per_class"], f"{reference}, test: reliability"
        )
        one = _hypnogram_rows(test_rows, evaluation["plots"]["hypnogram_recording"])
        predicted = {
            m: _codes(one, f"pred_{m}", classes) for m in [RAW, *context["smoothing_methods"]]
        }
        figures["hypnogram_test.png"] = plots.hypnogram_figure(
            one["t_start_s"].to_numpy() / 3600,
            _codes(one, "label", classes),
            predicted,
            one[proba_columns(classes)].to_numpy(dtype=float),
            classes,
            f"{reference}, recording {one['recording_id'].iat[0]}",
        )
    subjects = per_subject[(per_subject["model"] == reference) & (per_subject["smoothing"] == RAW)]
    subjects = subjects.assign(subject_id=subjects["subject_id"] + " (" + subjects["split"] + ")")
    figures["per_subject.png"] = plots.per_subject_figure(
        subjects, ["cohen_kappa", "macro_f1"], f"{reference}: per subject (raw)"
    )
    comparison = {
        name: {
            "test kappa": m.get("test", {}).get("cohen_kappa"),
            "test macro F1": m.get("test", {}).get("macro_f1"),
            "test kappa (HMM)": m.get("test", {})
            .get("smoothing", {})
            .get("hmm", {})
            .get("cohen_kappa"),
            "oof kappa": m.get("oof", {}).get("cohen_kappa"),
        }
        for name, m in metrics["models"].items()
    }
    figures["model_comparison.png"] = plots.model_comparison_figure(
        pd.DataFrame(comparison).T.astype(float).dropna(axis=1, how="all"),
        "models compared (raw unless stated)",
    )
    if metrics["comparisons"]:
        figures["paired_comparisons.png"] = plots.paired_comparison_figure(
            metrics["comparisons"],
            f"paired differences over {' + '.join(metrics['info']['comparisons']['splits'])} subjects",
        )
    if not fa_curve.empty:
        frozen = {
            split: metrics[split]["events"]["at_fa"]
            for split in SPLITS
            if metrics.get(split, {}).get("events")
        }
        figures["sensitivity_vs_fa.png"] = plots.fa_curve_figure(
            {split: c for split, c in fa_curve.groupby("split")},
            frozen,
            evaluation["events"]["fa_targets"],
            f"{reference}: threshold sweep on P({context['positive_class']})",
        )
    for figure in figures.values():
        figure.set_dpi(evaluation["plots"]["dpi"])
    return figures, sorted(figures)


def write_report(metrics: dict, context: dict, plot_names: list[str], evaluation: dict) -> str:
    """Markdown report (data/08_reporting/report.md)."""
    return render_report(metrics, context["classes"], evaluation.get("targets") or {}, plot_names)
