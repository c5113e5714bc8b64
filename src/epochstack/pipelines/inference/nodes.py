"""Nodes of the inference pipeline: new recordings -> epochs -> features -> the trained stack.

Preprocessing and features reuse the training code (data_engineering nodes and
``epochstack.signals.features``) so new recordings are treated exactly as training ones.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pandas as pd

from epochstack.errors import InputDataError
from epochstack.io.csv import read_csv_recordings
from epochstack.models.labels import proba_columns
from epochstack.models.manifest import check_against_manifest
from epochstack.models.stacking import StackedModel
from epochstack.pipelines.data_engineering.nodes import epoch_recordings
from epochstack.signals.epoch_store import EpochStore
from epochstack.signals.features import compute_features_for_store

logger = logging.getLogger(__name__)

OUTPUT_COLUMNS = ["epoch_id", "recording_id", "t_start_s", "label"]


def recordings_from_samples(samples: pd.DataFrame, dataset: dict) -> dict:
    """Recordings from a table of continuous samples (the ``csv`` source format, as a DataFrame).

    Columns: ``time`` (s), one per channel, ``recording_id``, ``subject_id`` (names as set in
    ``inference.dataset.csv``). This is the input of the packaged MLflow model.
    """
    if samples is None or len(samples) == 0:
        raise InputDataError("model input", "no samples given.", "pass a table with time, channel, recording_id and subject_id columns.")
    csv = dataset.get("csv") or {}
    # The CSV reader validates and splits recordings; a temporary file lets the model reuse it as is.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.csv"
        samples.to_csv(path, index=False)
        recordings = read_csv_recordings(
            path, time_column=csv.get("time_column", "time"), recording_column=csv.get("recording_column", "recording_id"),
            subject_column=csv.get("subject_column", "subject_id"), sfreq=dataset.get("sfreq"),
        )
    return {rec.recording_id: (lambda rec=rec: rec) for rec in recordings}


def epoch_new_recordings(recordings: dict, dataset: dict, preprocessing: dict, executor: dict) -> tuple[EpochStore, pd.DataFrame]:
    """The training preprocessing and epoching, applied to new recordings.

    The epochs go to a temporary store, removed when the process ends.
    """
    staged, epoch_table, _, report = epoch_recordings(recordings, dataset, preprocessing, executor, tempfile.gettempdir())
    logger.info("Inference: %d epochs from %d recordings (%d excluded).", report["n_epochs_kept"], report["n_recordings"], report["n_epochs_excluded"])
    return staged.open(), epoch_table


def compute_new_features(epochs: EpochStore, epoch_table: pd.DataFrame, features_params: dict, n_jobs: int) -> pd.DataFrame:
    """Features of the new epochs, computed by the same function as for training."""
    return compute_features_for_store(epochs, epoch_table, features_params, n_jobs)


def predict_new_epochs(
    stacking_model: StackedModel, stacking_manifest: dict, features: pd.DataFrame, epoch_table: pd.DataFrame
) -> pd.DataFrame:
    """Stacked labels and probabilities per epoch, after checking the inputs against the manifest."""
    check_against_manifest(stacking_manifest, features.columns, stacking_model.classes, stacking_model.base_model_order)
    features = features.set_index("epoch_id").loc[epoch_table["epoch_id"]]
    proba = stacking_model.predict_proba(features)
    out = epoch_table[["epoch_id", "recording_id", "t_start_s"]].reset_index(drop=True)
    out["label"] = pd.array([stacking_model.classes[i] for i in proba.argmax(axis=1)], dtype="string")
    out[proba_columns(stacking_model.classes)] = proba
    logger.info("Inference: labels %s.", out["label"].value_counts().to_dict())
    return out
