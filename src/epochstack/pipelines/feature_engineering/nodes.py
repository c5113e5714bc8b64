"""Nodes of the feature_engineering pipeline: thin calls into epochstack.signals.features."""

from __future__ import annotations

import pandas as pd

from epochstack.execution import Executor
from epochstack.signals.epoch_store import EpochStore
from epochstack.signals.features import compute_features_for_store


def compute_features(
    epoch_signals: EpochStore, epoch_table: pd.DataFrame, features: dict, executor: dict
) -> tuple[pd.DataFrame, pd.DataFrame, list[float]]:
    """Features of every epoch_table row (same order), recordings spread over the executor; a
    per-recording report (epochs, replaced non-finite values) and the seconds each recording took
    (for MLflow: timings stay out of the versioned report)."""
    table, report = compute_features_for_store(
        epoch_signals, epoch_table, features, Executor.from_params(executor), return_report=True
    )
    return table, report.drop(columns="seconds"), report["seconds"].tolist()


def feature_metrics(features: pd.DataFrame, report: pd.DataFrame, seconds: list[float]) -> dict:
    """Feature and epoch counts, replaced non-finite values, seconds per recording (one step each)."""
    values = features.drop(columns="epoch_id")
    metrics = {
        "n_features": {"value": float(values.shape[1]), "step": 0},
        "n_epochs": {"value": float(len(values)), "step": 0},
        "n_nonfinite_replaced": {"value": float(report["n_nonfinite_replaced"].sum()), "step": 0},
    }
    metrics["seconds_per_recording"] = [
        {"value": float(value), "step": step} for step, value in enumerate(seconds)
    ]
    return metrics
