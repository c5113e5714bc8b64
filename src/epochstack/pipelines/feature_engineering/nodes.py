"""Nodes of the feature_engineering pipeline: thin calls into epochstack.signals.features."""

from __future__ import annotations

import pandas as pd

from epochstack.execution import Executor
from epochstack.signals.epoch_store import EpochStore
from epochstack.signals.features import compute_features_for_store


def compute_features(
    epoch_signals: EpochStore, epoch_table: pd.DataFrame, features: dict, executor: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of every epoch_table row (same order), recordings spread over the executor, and
    a per-recording timing report."""
    return compute_features_for_store(
        epoch_signals, epoch_table, features, Executor.from_params(executor), return_report=True
    )


def feature_metrics(features: pd.DataFrame, report: pd.DataFrame) -> dict:
    """Feature and epoch counts, replaced non-finite values, seconds per recording (one step each)."""
    values = features.drop(columns="epoch_id")
    metrics = {
        "n_features": {"value": float(values.shape[1]), "step": 0},
        "n_epochs": {"value": float(len(values)), "step": 0},
        "n_nonfinite_replaced": {"value": float(report["n_nonfinite_replaced"].sum()), "step": 0},
    }
    metrics["seconds_per_recording"] = [
        {"value": float(seconds), "step": step} for step, seconds in enumerate(report["seconds"])
    ]
    return metrics
