"""The metrics.json document (every score of every model, strict JSON) and its headline numbers
logged to MLflow."""

from __future__ import annotations

import logging
import math
import re

import mlflow
import numpy as np
import pandas as pd

from epochstack.evaluation.context import RAW, SPLITS

logger = logging.getLogger(__name__)

HEADLINE_SPLITS = ("test", "oof")
HEADLINE_MODEL_SCORES = ("cohen_kappa", "macro_f1")


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
    ``models.hgb.oof.cohen_kappa``... see :func:`headline_metrics`); the
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


def _scalars(block: dict, prefix: str) -> dict[str, float]:
    return {
        f"{prefix}.{k}": float(v)
        for k, v in (block or {}).items()
        if isinstance(v, int | float) and not isinstance(v, bool) and pd.notna(v)
    }


def headline_metrics(document: dict) -> dict[str, float]:
    """The numbers a person compares runs by, from a metrics.json document.

    ``test.*`` / ``oof.*`` (the reference model): scalar scores, ``f1_per_class.<class>``,
    ``smoothing.<method>.{cohen_kappa, macro_f1}`` and, for detection tasks, the scalar event
    scores; ``models.<model>.<split>.{cohen_kappa, macro_f1}``: every model side by side. The
    long tail (per subject, precision/recall/AUROC per class, structure, operating points,
    comparisons) stays in the metrics.json artifact.
    """
    metrics = {}
    for split in HEADLINE_SPLITS:
        block = document.get(split) or {}
        metrics |= _scalars(block, split) | _scalars(
            block.get("f1_per_class"), f"{split}.f1_per_class"
        )
        metrics |= _scalars(block.get("events"), f"{split}.events")
        for method, scores in (block.get("smoothing") or {}).items():
            metrics |= _scalars(
                {k: v for k, v in (scores or {}).items() if k in HEADLINE_MODEL_SCORES},
                f"{split}.smoothing.{method}",
            )
    for model, splits in (document.get("models") or {}).items():
        for split in HEADLINE_SPLITS:
            scores = {
                k: v
                for k, v in ((splits or {}).get(split) or {}).items()
                if k in HEADLINE_MODEL_SCORES
            }
            metrics |= _scalars(scores, f"models.{model}.{split}")
    return {re.sub(r"[^\w\-. /]", "_", k): v for k, v in metrics.items()}
