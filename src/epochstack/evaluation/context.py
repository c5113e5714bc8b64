"""The scoring table (predictions joined to their epochs) and the evaluation context (settings
checked once, before anything is scored)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from epochstack.errors import InputDataError, ParameterError
from epochstack.evaluation.events import OBJECTIVES, TIMESCORING_RESOLUTION_S
from epochstack.evaluation.metrics import CONFUSION_SCORES, label_indices
from epochstack.evaluation.smoothing import segment_ids
from epochstack.models.labels import class_list, proba_columns

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


def _require_columns(frame: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputDataError(
            name, f"missing columns {missing}.", f"re-run the pipeline that writes {name}."
        )


def class_codes(rows: pd.DataFrame, column: str, classes: list[str]) -> np.ndarray:
    """Integer class codes of the class names in ``rows[column]``."""
    return label_indices(rows[column], classes, column)


def join_scoring_table(
    model_predictions: pd.DataFrame, epoch_table: pd.DataFrame, models: list[str] | None
) -> tuple[pd.DataFrame, int]:
    """Predictions (of ``models``, all when empty) joined to labels, recordings and times, sorted
    by model, split, recording, time, with a ``segment`` id per contiguous run of epochs (excluded
    epochs cut segments); and the number of unlabelled epochs, which cannot be scored and are
    excluded (and logged).
    """
    classes = class_list(epoch_table)
    _require_columns(
        model_predictions, PREDICTION_COLUMNS + proba_columns(classes), "model_predictions"
    )
    _require_columns(epoch_table, EPOCH_COLUMNS, "epoch_table")
    predictions = (
        model_predictions[model_predictions["model"].isin(models)] if models else model_predictions
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
            hyst["objective"] in OBJECTIVES,
            f"use one of {list(OBJECTIVES)}.",
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
    table: pd.DataFrame,
    n_unlabelled: int,
    epoch_table: pd.DataFrame,
    events: pd.DataFrame,
    evaluation: dict,
    label_mapping: str,
    stack_report: dict,
) -> dict:
    """Settings checked once, before anything is scored: protocol (the one the models were
    trained under, from the stack report), smoothing methods, reference model, positive class,
    impossible transitions for ``label_mapping``, class names in targets (a warning names
    unknown ones)."""
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
    models = sorted(table["model"].unique())
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
    shortest_epoch_s = float(table["duration_s"].min()) if len(table) else float("nan")
    if positive is not None and shortest_epoch_s / 10 < TIMESCORING_RESOLUTION_S:
        logger.warning(
            "Epochs of %.2f s: any-overlap scoring resolves %.1f s (timescoring's 10 Hz), coarser than a tenth of an epoch.",
            shortest_epoch_s,
            TIMESCORING_RESOLUTION_S,
        )
    without_oof = sorted(set(models) - set(table.loc[table["split"] == "oof", "model"]))
    if (positive is not None or "hmm" in methods) and without_oof:
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
