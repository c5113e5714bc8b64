"""Nodes of the inference pipeline: new recordings -> epochs -> features -> the trained stack.

New recordings are treated exactly as training ones: the preprocessing, channels and feature
parameters come from the stacking manifest of the training run (not from the current
parameters), and the same code epochs them and computes their features. Every base model the
stack reads runs, deep networks included.

:func:`label_recordings` is the one implementation: ``kedro run --pipelines inference`` and the
MLflow Model (:mod:`epochstack.serving`) both call it.
"""

from __future__ import annotations

import logging
import tempfile

import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.models.engine import EpochData
from epochstack.models.labels import proba_columns
from epochstack.models.manifest import check_against_manifest
from epochstack.models.stacking import StackedModel
from epochstack.pipelines.data_engineering.nodes import epoch_recordings
from epochstack.signals.epoch_store import EpochStore, StagedEpochStore
from epochstack.signals.features import compute_features_for_store

logger = logging.getLogger(__name__)

OUTPUT_COLUMNS = ["epoch_id", "recording_id", "t_start_s", "label"]


def training_settings(manifest: dict) -> dict:
    """The dataset, preprocessing and feature parameters the stack was trained with."""
    if "training" not in manifest:
        raise InputDataError(
            "stacking_manifest",
            "records no training parameters (an older run).",
            "retrain: kedro run.",
        )
    return manifest["training"]


def epoch_new_recordings(
    recordings: dict, dataset: dict, stacking_manifest: dict, executor: dict
) -> tuple[StagedEpochStore, pd.DataFrame]:
    """The training preprocessing and epoching, applied to new recordings (into a temporary store)."""
    training = training_settings(stacking_manifest)
    settings = {
        **dataset,
        "channels": training["dataset"].get("channels"),
        "label_mapping": training["dataset"].get("label_mapping", "none"),
    }
    if training["dataset"].get("sfreq") and not dataset.get("sfreq"):
        settings["sfreq"] = training["dataset"]["sfreq"]
    staged, epoch_table, _, report = epoch_recordings(
        recordings, settings, training["preprocessing"], executor, tempfile.gettempdir()
    )
    logger.info(
        "Inference: %d epochs from %d recordings (%d excluded).",
        report["n_epochs_kept"],
        report["n_recordings"],
        report["n_epochs_excluded"],
    )
    return staged, epoch_table


def compute_new_features(
    epochs: EpochStore, epoch_table: pd.DataFrame, stacking_manifest: dict, executor: dict
) -> pd.DataFrame:
    """Features of the new epochs with the training feature parameters (none when the stack reads no features)."""
    if "features" not in stacking_manifest.get("reads", {}).values():
        return pd.DataFrame({"epoch_id": epoch_table["epoch_id"]})
    return compute_features_for_store(
        epochs, epoch_table, training_settings(stacking_manifest)["features"], executor
    )


def predict_new_epochs(
    stacking_model: StackedModel,
    stacking_manifest: dict,
    features: pd.DataFrame,
    epochs: EpochStore,
    epoch_table: pd.DataFrame,
) -> pd.DataFrame:
    """Stacked labels and probabilities per epoch, after checking the inputs against the manifest."""
    check_against_manifest(stacking_manifest, stacking_model, features.columns)
    table = epoch_table.assign(fold=-1).reset_index(drop=True)
    data = EpochData(
        table, stacking_model.classes, features=features.set_index("epoch_id"), signals=epochs
    )
    proba = stacking_model.predict_proba(data)
    out = table[["epoch_id", "recording_id", "t_start_s"]].copy()
    out["label"] = pd.array(
        np.asarray(stacking_model.classes, dtype=object)[proba.argmax(axis=1)], dtype="string"
    )
    out[proba_columns(stacking_model.classes)] = proba
    logger.info("Inference: labels %s.", out["label"].value_counts().to_dict())
    return out


def label_recordings(
    recordings: dict,
    dataset: dict,
    stacking_model: StackedModel,
    stacking_manifest: dict,
    executor: dict,
) -> pd.DataFrame:
    """New recordings -> the training epochs and features -> every base model the stack reads ->
    the stack: one row per epoch (``epoch_id, recording_id, t_start_s, label, proba_<class>...``).

    The temporary epoch store is removed as soon as the labels are known.
    """
    staged, epoch_table = epoch_new_recordings(recordings, dataset, stacking_manifest, executor)
    try:
        epochs = staged.open()
        features = compute_new_features(epochs, epoch_table, stacking_manifest, executor)
        return predict_new_epochs(stacking_model, stacking_manifest, features, epochs, epoch_table)
    finally:
        staged.discard()
