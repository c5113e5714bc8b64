"""Nodes of the data_engineering pipeline: thin calls into epochstack.signals / io / models.

Nothing is saved until everything is known to be good: recordings are epoched by parallel
workers into a staging folder (one recording in memory per worker,
:func:`epochstack.epoching.epoch_recordings`), the split is checked, and only the last
node hands the outputs to the catalog, which moves the staged epochs into place in one rename.
A failing run leaves the outputs of the previous run as they were.
"""

from __future__ import annotations

import logging

import pandas as pd

from epochstack.epoching import epoch_recordings
from epochstack.errors import InputDataError
from epochstack.ids import safe_id
from epochstack.models.splits import assign_folds
from epochstack.recordings import RecordingSource, read_recordings
from epochstack.signals.epoch_store import StagedEpochStore

__all__ = [
    "epoch_recordings",
    "ingest_recordings",
    "make_folds",
    "publish_epochs",
    "quality_metrics",
]

logger = logging.getLogger(__name__)


def ingest_recordings(dataset: dict) -> dict[str, RecordingSource]:
    """Recording sources by id, lazily read: ``dataset.format`` alone picks the reader
    (:func:`epochstack.recordings.read_recordings`)."""
    return read_recordings(dataset)


def make_folds(epoch_table: pd.DataFrame, splits: dict) -> pd.DataFrame:
    """Subject-wise folds; fold -1 is the held-out test set. Refuses unlabelled or one-class data."""
    unlabelled = epoch_table.loc[epoch_table["label"].isna(), "recording_id"].unique()
    if len(unlabelled):
        raise InputDataError(
            f"recordings {sorted(unlabelled)[:5]}",
            f"{len(unlabelled)} recording(s) have no labels; training needs a label per epoch.",
            "give their labels (hypnogram, label column or events), or run them through the inference pipeline.",
        )
    classes = sorted(epoch_table["label"].astype(str).unique())
    if len(classes) < 2:
        raise InputDataError(
            "epoch_table.label",
            f"every epoch has the one label {classes[0]!r}: there is nothing to classify.",
            "check the label column / label mapping, or add recordings of other classes.",
        )
    folds = assign_folds(
        epoch_table,
        method=splits["method"],
        n_folds=splits["n_folds"],
        test_subjects=[
            safe_id(subject, "splits.test_subjects", "subject_id")
            for subject in splits.get("test_subjects") or []
        ]
        or None,
        n_test_subjects=splits.get("n_test_subjects", 0),
        seed=splits["seed"],
    )
    logger.info("Folds (fold: epochs): %s", folds["fold"].value_counts().sort_index().to_dict())
    return folds


def publish_epochs(
    staged: StagedEpochStore,
    epoch_table: pd.DataFrame,
    events: pd.DataFrame,
    report: dict,
    folds: pd.DataFrame,
) -> tuple[StagedEpochStore, pd.DataFrame, pd.DataFrame, dict, pd.DataFrame]:
    """Hand every output to the catalog at once, once the split is known to be feasible."""
    return staged, epoch_table, events, report, folds


def quality_metrics(report: dict, folds: pd.DataFrame) -> dict:
    """The report's counts as MLflow metrics (kept / excluded epochs, by reason)."""
    metrics = {
        "epochs_total": report["n_epochs_total"],
        "epochs_kept": report["n_epochs_kept"],
        "epochs_excluded": report["n_epochs_excluded"],
        "epochs_flagged_artefact": report["n_epochs_flagged_artefact"],
        "recordings": report["n_recordings"],
        "subjects": report["n_subjects"],
        "test_epochs": int((folds["fold"] == -1).sum()),
        **{f"excluded_{reason}": n for reason, n in report["excluded_by_reason"].items()},
    }
    return {name: {"value": float(value), "step": 0} for name, value in metrics.items()}
