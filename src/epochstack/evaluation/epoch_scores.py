"""Epoch scores of every model on every split, raw and smoothed: label, calibration and structure
metrics, per-subject tables, and subject bootstrap intervals when there are enough subjects."""

from __future__ import annotations

import numpy as np
import pandas as pd

from epochstack.evaluation.context import RAW, class_codes
from epochstack.evaluation.metrics import (
    bootstrap_intervals,
    label_metrics,
    per_subject_metrics,
    probability_metrics,
    summarise_subjects,
    too_few_subjects,
)
from epochstack.evaluation.smoothing import segment_slices
from epochstack.evaluation.structure import structure_metrics
from epochstack.models.labels import proba_columns

# What each split's numbers estimate (``estimate`` in metrics.json), see docs/metrics.md.
ESTIMATES = {
    "test": "held_out",
    "oof:nested": "oof_nested",
    "oof:non_nested": "oof_selection_biased",
}


def _sequences(values: np.ndarray, segments: np.ndarray) -> list[np.ndarray]:
    """Per-segment code sequences (rows are in segment order)."""
    return [values[rows] for rows in segment_slices(segments)]


def _split_metrics(
    rows: pd.DataFrame, context: dict, evaluation: dict, estimate: str
) -> tuple[dict, list[pd.DataFrame]]:
    """Raw and smoothed metrics of one model on one split, and its per-subject tables."""
    classes, methods = context["classes"], context["smoothing_methods"]
    epoch_s = float(rows["duration_s"].median())
    segments, subjects = rows["segment"].to_numpy(), rows["subject_id"].to_numpy()
    y_true = class_codes(rows, "label", classes)
    true_seqs = _sequences(y_true, segments)
    boot = evaluation["bootstrap"]
    result: dict = {"estimate": estimate, "smoothing": {}}
    tables = []
    for method in [RAW, *methods]:
        y_pred = class_codes(rows, f"pred_{method}", classes)
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
