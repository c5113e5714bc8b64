"""Nodes of the evaluation pipeline: thin calls into ``epochstack.evaluation``."""

from __future__ import annotations

import copy
import logging
import math
import re

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from timescoring.scoring import EventScoring
from tqdm.auto import tqdm

from epochstack.errors import InputDataError
from epochstack.evaluation import events as ev
from epochstack.evaluation import plots
from epochstack.evaluation.calibration import reliability_curves
from epochstack.evaluation.metrics import (
    bootstrap_intervals,
    confusion_counts,
    label_indices,
    label_metrics,
    per_subject_metrics,
    probability_metrics,
)
from epochstack.evaluation.report import render_report
from epochstack.evaluation.smoothing import (
    hmm_parameters,
    hmm_smooth,
    hysteresis,
    median_smooth,
    remove_short_events,
)
from epochstack.evaluation.structure import structure_metrics
from epochstack.models.labels import class_list, proba_columns

logger = logging.getLogger(__name__)

SPLITS = ("oof", "test")
RAW = "none"
PREDICTION_COLUMNS = ["epoch_id", "fold", "model", "split", "pred"]
EPOCH_COLUMNS = ["epoch_id", "recording_id", "subject_id", "epoch_index", "t_start_s", "duration_s", "label"]
SMOOTHING_METHODS = ("hmm", "median", "hysteresis")


def _require_columns(frame: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputDataError(name, f"missing columns {missing}.", f"re-run the pipeline that writes {name}.")


def positive_class(events: pd.DataFrame, classes: list[str], evaluation: dict) -> str | None:
    """The detection class: ``events.positive_class`` if set, else the one label of ``events``."""
    configured = evaluation["events"].get("positive_class")
    if configured is not None:
        if configured not in classes:
            raise InputDataError("evaluation.events.positive_class", f"{configured!r} is not a class {classes}.", "set one of the epoch labels or null.")
        return configured
    labels = sorted(set(events["label"].astype(str)) & set(classes)) if len(events) else []
    return labels[0] if len(labels) == 1 else None


def build_scoring_table(model_predictions: pd.DataFrame, epoch_table: pd.DataFrame, evaluation: dict) -> tuple[pd.DataFrame, int]:
    """Predictions joined to labels, recordings and times, sorted by model, split, recording, time;
    and the number of unlabelled epochs, which cannot be scored and are excluded (and logged).
    """
    classes = class_list(epoch_table)
    _require_columns(model_predictions, PREDICTION_COLUMNS + proba_columns(classes), "model_predictions")
    _require_columns(epoch_table, EPOCH_COLUMNS, "epoch_table")
    wanted = evaluation.get("models")
    predictions = model_predictions[model_predictions["model"].isin(wanted)] if wanted else model_predictions
    table = predictions.merge(epoch_table[EPOCH_COLUMNS], on="epoch_id", how="left", validate="many_to_one", indicator=True)
    unknown = table["_merge"] == "left_only"
    if unknown.any():
        raise InputDataError("model_predictions", f"{unknown.sum()} rows have epoch_ids absent from epoch_table (e.g. {table.epoch_id[unknown].iloc[0]!r}).", "re-run stacking on the current epoch_table.")
    unlabelled = table["label"].isna()
    n_unlabelled = int(table.loc[unlabelled, "epoch_id"].nunique())
    if n_unlabelled:
        logger.warning("Excluded %d unlabelled epochs from scoring.", n_unlabelled)
    table = table[~unlabelled].drop(columns="_merge")
    table = table.astype({"model": str, "split": str, "label": str, "pred": str, "recording_id": str, "subject_id": str})
    label_indices(table["pred"], classes, "model_predictions.pred")
    logger.info("Scoring %d models: %s", table["model"].nunique(), sorted(table["model"].unique()))
    return table.sort_values(["model", "split", "recording_id", "epoch_index"], ignore_index=True), n_unlabelled


def _training_sequences(epoch_table: pd.DataFrame, folds: pd.DataFrame, classes: list[str]) -> dict[int, list[np.ndarray]]:
    """Per CV fold: integer label sequences of its recordings, cut at gaps in ``epoch_index``."""
    labelled = epoch_table.dropna(subset=["label"]).merge(folds[["epoch_id", "fold"]], on="epoch_id")
    labelled = labelled[labelled["fold"] >= 0].sort_values(["recording_id", "epoch_index"])
    codes = label_indices(labelled["label"].astype(str), classes, "epoch_table.label")
    segment = (labelled["recording_id"] != labelled["recording_id"].shift()) | (labelled["epoch_index"].diff() != 1)
    sequences: dict[int, list[np.ndarray]] = {}
    for (fold, _), idx in labelled.groupby([labelled["fold"].to_numpy(), segment.cumsum().to_numpy()]).indices.items():
        sequences.setdefault(int(fold), []).append(codes[idx])
    return sequences


def hmm_models(epoch_table: pd.DataFrame, folds: pd.DataFrame, smoothing: dict) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """HMM (transitions, priors) per prediction fold, from training labels only.

    OOF epochs of fold k use the labels of the other CV folds; test epochs (fold -1) use all CV
    folds. Held-out test labels are never read.
    """
    classes = class_list(epoch_table)
    sequences = _training_sequences(epoch_table, folds, classes)
    hmm = smoothing["hmm"]

    def fit(train_folds):
        seqs = [s for f in train_folds for s in sequences[f]]
        return hmm_parameters(seqs, len(classes), hmm["pseudo_count"], hmm["self_transition_pseudo_count"])

    models = {fold: fit([f for f in sequences if f != fold]) for fold in sequences}
    models[-1] = fit(list(sequences))
    return models


def smooth_predictions(
    scoring_table: pd.DataFrame, n_unlabelled: int, epoch_table: pd.DataFrame, folds: pd.DataFrame, events: pd.DataFrame, evaluation: dict
) -> tuple[pd.DataFrame, dict]:
    """Adds ``pred_<method>`` columns (class names), each computed per recording in time order,
    and returns the scoring context (smoothing methods run, positive class, exclusions).

    ``pred_none`` is the model's own decision; hysteresis applies to detection tasks only.
    """
    classes = class_list(epoch_table)
    smoothing = evaluation["smoothing"]
    methods = list(smoothing["methods"])
    unknown = sorted(set(methods) - set(SMOOTHING_METHODS))
    if unknown:
        raise InputDataError("evaluation.smoothing.methods", f"unknown methods {unknown}.", f"use any of {list(SMOOTHING_METHODS)}.")
    positive = positive_class(events, classes, evaluation)
    if positive is None and "hysteresis" in methods:
        methods.remove("hysteresis")
    models = hmm_models(epoch_table, folds, smoothing) if "hmm" in methods else {}
    proba = scoring_table[proba_columns(classes)].to_numpy(dtype=float)
    decisions = {m: np.empty(len(scoring_table), dtype=np.int64) for m in methods}
    groups = scoring_table.groupby(["model", "split", "recording_id"], sort=False).indices
    for (_, split, _), idx in tqdm(groups.items(), desc="smoothing", disable=len(groups) < 50):
        p = proba[idx]
        if "hmm" in methods:
            fold = -1 if split == "test" else int(scoring_table["fold"].iat[idx[0]])
            if fold not in models:
                raise InputDataError("model_predictions", f"OOF rows of fold {fold}, which is not a CV fold of `folds` {sorted(models)}.", "re-run stacking with the current folds.")
            decisions["hmm"][idx] = hmm_smooth(p, *models[fold])
        if "median" in methods:
            decisions["median"][idx] = median_smooth(p, smoothing["median"]["window"])
        if "hysteresis" in methods:
            settings = smoothing["hysteresis"]
            k = classes.index(positive)
            active = hysteresis(p[:, k], settings["tau_on"], settings["tau_off"])
            epoch_s = float(scoring_table["duration_s"].iat[idx[0]])
            active = remove_short_events(active, math.ceil(settings["min_duration_s"] / epoch_s))
            other = p.copy()
            other[:, k] = -1  # off epochs take the most probable other class
            decisions["hysteresis"][idx] = np.where(active, k, other.argmax(axis=1))
    smoothed = scoring_table.assign(pred_none=scoring_table["pred"], **{f"pred_{m}": np.asarray(classes, dtype=object)[codes] for m, codes in decisions.items()})
    return smoothed, {"smoothing_methods": methods, "positive_class": positive, "n_unlabelled_excluded": n_unlabelled}


def _label_codes(smoothed: pd.DataFrame, columns: list[str], classes: list[str]) -> pd.DataFrame:
    """Integer class codes of the label and decision columns, encoded once for the whole table."""
    return pd.DataFrame({c: label_indices(smoothed[c], classes, c) for c in columns}, index=smoothed.index)


def _sequences(codes: np.ndarray, recording_ids: np.ndarray) -> list[np.ndarray]:
    """Per-recording code sequences (rows are already in recording, time order)."""
    boundaries = np.flatnonzero(recording_ids[1:] != recording_ids[:-1]) + 1
    return np.split(codes, boundaries)


def _split_metrics(rows: pd.DataFrame, codes: pd.DataFrame, classes: list[str], methods: list[str], evaluation: dict, epoch_s: float) -> dict:
    forbidden = [tuple(pair) for pair in evaluation["structure"]["impossible_transitions"]]
    recording_ids = rows["recording_id"].to_numpy()
    y_true = codes["label"].to_numpy()
    true_seqs = _sequences(y_true, recording_ids)
    result = {}
    for method in [RAW, *methods]:
        y_pred = codes[f"pred_{method}"].to_numpy()
        scores = label_metrics(y_true, y_pred, classes)
        scores["structure"] = structure_metrics(true_seqs, _sequences(y_pred, recording_ids), classes, forbidden, epoch_s)
        if method == RAW:
            scores |= probability_metrics(y_true, rows[proba_columns(classes)].to_numpy(dtype=float), classes, evaluation["calibration"]["n_bins"])
            boot = evaluation["bootstrap"]
            scores["ci"] = bootstrap_intervals(y_true, y_pred, rows["subject_id"].to_numpy(), classes, boot["n_boot"], boot["level"], evaluation["seed"])
            result = scores | {"smoothing": {}}
        else:  # epoch and support counts are those of the raw entry
            result["smoothing"][method] = {k: v for k, v in scores.items() if k not in ("n_epochs", "support_per_class")}
    return result


def compute_epoch_metrics(smoothed: pd.DataFrame, context: dict, epoch_table: pd.DataFrame, evaluation: dict) -> tuple[dict, pd.DataFrame]:
    """Epoch, calibration and structure metrics per model and split (raw and smoothed); per-subject table."""
    classes = class_list(epoch_table)
    methods = context["smoothing_methods"]
    epoch_s = float(smoothed["duration_s"].median())
    codes = _label_codes(smoothed, ["label", *[f"pred_{m}" for m in [RAW, *methods]]], classes)
    models: dict[str, dict] = {}
    subject_tables = []
    for (model, split), rows in smoothed.groupby(["model", "split"], sort=True):
        row_codes = codes.loc[rows.index]
        models.setdefault(model, {})[split] = _split_metrics(rows, row_codes, classes, methods, evaluation, epoch_s)
        for method in [RAW, *methods]:
            table = per_subject_metrics(row_codes["label"].to_numpy(), row_codes[f"pred_{method}"].to_numpy(), rows["subject_id"].to_numpy(), classes)
            subject_tables.append(table.assign(model=model, split=split, smoothing=method))
    per_subject = pd.concat(subject_tables, ignore_index=True)
    columns = ["model", "split", "smoothing", "subject_id", "n_epochs"]
    return {"models": models}, per_subject[columns + [c for c in per_subject.columns if c not in columns]]


def _reference_events(rows: pd.DataFrame, events: pd.DataFrame, positive: str) -> dict[str, ev.Events]:
    """Annotated events per recording; derived from epoch labels when ``events`` is empty."""
    if len(events):
        selected = events[events["label"].astype(str) == positive]
        return {
            rid: list(zip(e["onset_s"].astype(float), (e["onset_s"] + e["duration_s"]).astype(float), strict=True))
            for rid, e in selected.groupby(selected["recording_id"].astype(str))
        }
    return {
        rid: ev.epochs_to_events(r["label"].to_numpy() == positive, r["t_start_s"].to_numpy(), r["duration_s"].to_numpy())
        for rid, r in rows.groupby("recording_id", sort=False)
    }


def _scoring_parameters(timescoring: dict) -> EventScoring.Parameters:
    return EventScoring.Parameters(
        toleranceStart=timescoring["tolerance_start_s"],
        toleranceEnd=timescoring["tolerance_end_s"],
        minOverlap=timescoring["min_overlap"],
        maxEventDuration=timescoring["max_event_duration_s"],
        minDurationBetweenEvents=timescoring["min_duration_between_events_s"],
    )


def compute_event_metrics(smoothed: pd.DataFrame, context: dict, events: pd.DataFrame, evaluation: dict) -> tuple[dict, pd.DataFrame]:
    """Event metrics per model, split and smoothing (detection tasks), and the reference model's
    sensitivity-vs-FA/24h sweep. Empty results when the task has no positive class."""
    positive = context["positive_class"]
    curve_columns = ["split", "threshold", "sensitivity", "fa_per_24h"]
    if positive is None:
        return {"models": {}}, pd.DataFrame(columns=curve_columns)
    settings = evaluation["events"]
    params = _scoring_parameters(settings["timescoring"])
    proba_column = f"proba_{positive}"
    models: dict[str, dict] = {}
    curves = []
    for (model, split), rows in smoothed.groupby(["model", "split"], sort=True):
        references = _reference_events(rows, events, positive)
        by_recording = rows.groupby("recording_id", sort=False)
        spans = {rid: float((r["t_start_s"] + r["duration_s"]).max()) for rid, r in by_recording}
        split_metrics: dict = {"smoothing": {}}
        for method in [RAW, *context["smoothing_methods"]]:
            detections = [
                ev.RecordingDetections(references.get(rid, []), ev.epochs_to_events(r[f"pred_{method}"].to_numpy() == positive, r["t_start_s"], r["duration_s"]), spans[rid])
                for rid, r in by_recording
            ]
            scores = ev.szcore_scores(detections, params) | {"taes": ev.taes_scores(detections), "iou": ev.iou_scores(detections, settings["min_iou"])}
            if method == RAW:
                split_metrics |= scores
            else:
                split_metrics["smoothing"][method] = {"events": scores}
        if model == evaluation["reference_model"]:
            # An even grid plus quantiles: events are rare, so quantiles alone crowd near 0 and
            # skip the useful range (measured: every FA target gave the top threshold only).
            grid = np.linspace(0, 1, settings["n_thresholds"])
            thresholds = np.unique(np.concatenate([grid, np.quantile(rows[proba_column], grid)]))
            curve = ev.sensitivity_fa_curve(
                [references.get(rid, []) for rid in by_recording.groups],
                [r[proba_column].to_numpy() for _, r in by_recording],
                [r["t_start_s"].to_numpy() for _, r in by_recording],
                [r["duration_s"].to_numpy() for _, r in by_recording],
                [spans[rid] for rid in by_recording.groups],
                thresholds,
                params,
            )
            split_metrics["sensitivity_at_fa"] = ev.sensitivity_at_fa(curve, settings["fa_targets"])
            curves.append(pd.DataFrame(curve).assign(split=split))
        models.setdefault(model, {})[split] = split_metrics
    fa_curve = pd.concat(curves, ignore_index=True)[curve_columns] if curves else pd.DataFrame(columns=curve_columns)
    return {"models": models}, fa_curve


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


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


def assemble_metrics(epoch_metrics: dict, event_metrics: dict, smoothed: pd.DataFrame, context: dict, evaluation: dict) -> dict:
    """The metrics.json document: ``models.<name>.<split>.*`` for every model; top-level
    ``test.*`` / ``oof.*`` are the reference model's raw predictions (no smoothing)."""
    models = copy.deepcopy(epoch_metrics["models"])
    for model, splits in event_metrics["models"].items():
        for split, scores in splits.items():
            models[model][split]["events"] = {k: v for k, v in scores.items() if k != "smoothing"}
            models[model][split]["smoothing"] = _merge(models[model][split]["smoothing"], scores["smoothing"])
    reference = evaluation["reference_model"]
    if reference not in models:
        raise InputDataError("model_predictions", f"no predictions of the reference model {reference!r} (models: {sorted(models)}).", "run stacking, or set evaluation.reference_model.")
    split_counts = smoothed.groupby("split")["epoch_id"].nunique()
    info = {
        "reference_model": reference,
        "top_level_smoothing": RAW,
        "smoothing_methods": context["smoothing_methods"],
        "positive_class": context["positive_class"],
        "n_test_epochs": int(split_counts.get("test", 0)),
        "n_oof_epochs": int(split_counts.get("oof", 0)),
        "n_unlabelled_excluded": context["n_unlabelled_excluded"],
        "bootstrap_level": evaluation["bootstrap"]["level"],
    }
    return _json_safe({"info": info, **{split: models[reference].get(split, {}) for split in SPLITS}, "models": models})


def _flatten(tree: dict, prefix: str = "") -> dict[str, float]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _flatten(value, f"{name}.")
        elif isinstance(value, int | float) and not isinstance(value, bool) and value is not None and math.isfinite(value):
            flat[name] = float(value)
    return flat


def log_metrics_to_mlflow(metrics: dict) -> None:
    """Every numeric entry of metrics.json as an MLflow metric (``test.macro_f1``, ``models.hgb.oof.cohen_kappa``...).

    One batched ``mlflow.log_metrics`` call: MlflowMetricsHistoryDataset logs metric by metric,
    which takes seconds for the ~1,000 entries here on the SQLite backend.
    """
    if mlflow.active_run() is None:
        logger.info("No active MLflow run: metrics not logged.")
        return
    flat = {re.sub(r"[^\w\-. /]", "_", k): v for k, v in _flatten({k: v for k, v in metrics.items() if k != "info"}).items()}
    mlflow.log_metrics(flat)
    mlflow.set_tags({"evaluation.reference_model": metrics["info"]["reference_model"], "evaluation.top_level_smoothing": RAW})
    logger.info("Logged %d evaluation metrics to MLflow.", len(flat))


def confusion_pairs(smoothed: pd.DataFrame, evaluation: dict) -> pd.DataFrame:
    """``actual, predicted`` of the reference model's raw test predictions (for ``dvc plots``)."""
    rows = smoothed[(smoothed["model"] == evaluation["reference_model"]) & (smoothed["split"] == "test")]
    return pd.DataFrame({"actual": rows["label"].to_numpy(), "predicted": rows["pred_none"].to_numpy()})


def _hypnogram_rows(rows: pd.DataFrame, recording: str | None) -> pd.DataFrame:
    recordings = rows["recording_id"].unique()
    if recording is not None and recording not in recordings:
        raise InputDataError("evaluation.plots.hypnogram_recording", f"{recording!r} is not a test recording ({list(recordings)}).", "set a test recording_id or null.")
    return rows[rows["recording_id"] == (recording or recordings[0])]


def make_plots(
    smoothed: pd.DataFrame, context: dict, metrics: dict, per_subject: pd.DataFrame, fa_curve: pd.DataFrame, epoch_table: pd.DataFrame, evaluation: dict
) -> tuple[dict[str, Figure], list[str]]:
    """PNG figures by file name (and the names): confusion matrices, hypnogram, reliability,
    per-subject bars, model comparison and (detection tasks) sensitivity vs FA/24h."""
    classes = class_list(epoch_table)
    reference = evaluation["reference_model"]
    ref_rows = smoothed[smoothed["model"] == reference]
    figures: dict[str, Figure] = {}
    for split in SPLITS:
        rows = ref_rows[ref_rows["split"] == split]
        if rows.empty:
            continue
        y_true, y_pred = label_indices(rows["label"], classes), label_indices(rows["pred_none"], classes)
        figures[f"confusion_{split}.png"] = plots.confusion_figure(confusion_counts(y_true, y_pred, len(classes)), classes, f"{reference}, {split} (raw)")
    test_rows = ref_rows[ref_rows["split"] == "test"]
    if not test_rows.empty:
        y_true = label_indices(test_rows["label"], classes)
        proba = test_rows[proba_columns(classes)].to_numpy(dtype=float)
        curves = reliability_curves(y_true, proba, classes, evaluation["calibration"]["n_bins"])
        figures["reliability_test.png"] = plots.reliability_figure(curves, metrics["test"]["ece_per_class"], f"{reference}, test: reliability")
        one = _hypnogram_rows(test_rows, evaluation["plots"]["hypnogram_recording"])
        predicted = {m: label_indices(one[f"pred_{m}"], classes) for m in [RAW, *context["smoothing_methods"]]}
        figures["hypnogram_test.png"] = plots.hypnogram_figure(
            one["t_start_s"].to_numpy() / 3600, label_indices(one["label"], classes), predicted,
            one[proba_columns(classes)].to_numpy(dtype=float), classes, f"{reference}, recording {one['recording_id'].iat[0]}",
        )
    subjects = per_subject[(per_subject["model"] == reference) & (per_subject["smoothing"] == RAW)]
    subjects = subjects.assign(subject_id=subjects["subject_id"] + " (" + subjects["split"] + ")")
    figures["per_subject.png"] = plots.per_subject_figure(subjects, ["cohen_kappa", "macro_f1"], f"{reference}: per subject (raw)")
    comparison = {
        name: {
            "test kappa": m.get("test", {}).get("cohen_kappa"),
            "test macro F1": m.get("test", {}).get("macro_f1"),
            "test kappa (HMM)": m.get("test", {}).get("smoothing", {}).get("hmm", {}).get("cohen_kappa"),
            "oof kappa": m.get("oof", {}).get("cohen_kappa"),
        }
        for name, m in metrics["models"].items()
    }
    figures["model_comparison.png"] = plots.model_comparison_figure(pd.DataFrame(comparison).T.astype(float).dropna(axis=1, how="all"), "models compared (raw unless stated)")
    if not fa_curve.empty:
        curves_by_split = {split: c for split, c in fa_curve.groupby("split")}
        figures["sensitivity_vs_fa.png"] = plots.fa_curve_figure(curves_by_split, evaluation["events"]["fa_targets"], f"{reference}: threshold sweep on P({metrics['info']['positive_class']})")
    for figure in figures.values():
        figure.set_dpi(evaluation["plots"]["dpi"])
    return figures, sorted(figures)


def write_report(metrics: dict, epoch_table: pd.DataFrame, plot_names: list[str], evaluation: dict) -> str:
    """Markdown report (data/08_reporting/report.md)."""
    return render_report(metrics, class_list(epoch_table), evaluation.get("targets") or {}, plot_names)
