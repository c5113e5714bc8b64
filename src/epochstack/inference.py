"""New recordings -> the training epochs and features -> every base model -> the stack.

The one implementation of labelling new recordings: the inference pipeline's node, the MLflow
Model (:mod:`epochstack.serving`) and the REST service (:mod:`epochstack.service`) all call
:func:`label_recordings`. New recordings are treated exactly as training ones: the
preprocessing, channels and feature parameters come from the stacking manifest of the training
run (not from the current parameters), and the same code epochs them
(:func:`epochstack.epoching.epoch_recordings`) and computes their features.

Before any prediction each recording is checked against the epochs the model was trained on
(``manifest["epochs"]``: channels, sampling rate, samples per epoch): a recording without the
model's channels or at another rate is refused with one line naming the file. A model trained
on trials (UEA ``.ts``, HDF5 epochs: the source gives epochs, not a continuous recording) reads
trials: each new recording is cut into trials of the training length (one trial per recording
id in the samples table of the MLflow Model), never into 30-s windows.
"""

from __future__ import annotations

import logging
import tempfile
from functools import partial

import numpy as np
import pandas as pd

from epochstack.epoching import epoch_recordings
from epochstack.errors import InputDataError
from epochstack.models.engine import EpochData
from epochstack.models.labels import proba_columns
from epochstack.models.manifest import check_against_manifest
from epochstack.models.stacking import StackedModel
from epochstack.recordings import EPOCHED_FORMATS, RecordingSource, sampling_rate_known
from epochstack.signals.epoch_store import EpochStore, StagedEpochStore
from epochstack.signals.features import compute_features_for_store
from epochstack.signals.preprocessing import pick_channels
from epochstack.signals.recording import EpochedRecording, Recording

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


def reads_trials(manifest: dict) -> bool:
    """True when the model was trained on trials (a source of epochs), not continuous recordings."""
    return training_settings(manifest)["dataset"].get("format") in EPOCHED_FORMATS


def model_input(manifest: dict) -> dict | None:
    """What the model reads: ``channel_names``, ``sfreq``, ``sfreq_known``, ``n_times`` (per
    epoch) and ``epoch_s``, from the manifest (None for manifests of older runs)."""
    epochs = manifest.get("epochs")
    if not epochs:
        return None
    return {**epochs, "epoch_s": epochs["n_times"] / epochs["sfreq"]}


def as_trials(recording: Recording | EpochedRecording, n_times: int) -> EpochedRecording:
    """A recording as consecutive trials of ``n_times`` samples (one trial: the whole recording)."""
    if isinstance(recording, EpochedRecording):
        if recording.epochs.shape[2] != n_times:
            raise InputDataError(
                recording.source,
                f"trials of {recording.epochs.shape[2]} samples; the model reads {n_times}.",
                f"give trials of {n_times} samples (resample or cut them as for training).",
            )
        return recording
    n_channels, n_samples = recording.signals.shape
    if n_samples == 0 or n_samples % n_times:
        raise InputDataError(
            recording.source,
            f"recording {recording.recording_id!r} holds {n_samples} samples, not whole trials "
            f"of the {n_times} samples the model reads.",
            f"give each trial its own recording id with exactly {n_times} samples.",
        )
    epochs = recording.signals.reshape(n_channels, n_samples // n_times, n_times)
    return EpochedRecording(
        recording_id=recording.recording_id,
        subject_id=recording.subject_id,
        epochs=np.ascontiguousarray(epochs.transpose(1, 0, 2), dtype=np.float32),
        sfreq=recording.sfreq,
        channel_names=list(recording.channel_names),
        channel_types=list(recording.channel_types),
        source=recording.source,
    )


def fit_to_model(
    source: RecordingSource, expected: dict, trials: bool, resample_hz: float | None
) -> Recording | EpochedRecording:
    """Load one new recording and check it against what the model reads: its channels (picked
    by name, in the model's order), its rate (after the training resampling) or trial length."""
    recording = source()
    wanted = list(expected["channel_names"])
    missing = [c for c in wanted if c not in recording.channel_names]
    if missing:
        raise InputDataError(
            recording.source,
            f"channel(s) {missing} that the model reads are missing; the recording has "
            f"{list(recording.channel_names)}.",
            f"give the channels {wanted} (same names), or use a model trained on these channels.",
        )
    if isinstance(recording, EpochedRecording):
        index = [recording.channel_names.index(c) for c in wanted]
        recording.epochs = recording.epochs[:, index]
        recording.channel_names = wanted
        recording.channel_types = [recording.channel_types[i] for i in index]
    else:
        recording = pick_channels(recording, wanted)
    if trials:
        return as_trials(recording, int(expected["n_times"]))
    rate = float(resample_hz or recording.sfreq)
    if expected["sfreq_known"] and not np.isclose(rate, float(expected["sfreq"])):
        raise InputDataError(
            recording.source,
            f"sampling rate {recording.sfreq:g} Hz; the model reads {float(expected['sfreq']):g} Hz.",
            f"resample the recording to {float(expected['sfreq']):g} Hz, or train with "
            "preprocessing.resample_hz set.",
        )
    return recording


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
    expected = model_input(stacking_manifest)
    if expected is not None:
        check = partial(
            fit_to_model,
            expected=expected,
            trials=reads_trials(stacking_manifest),
            resample_hz=training["preprocessing"].get("resample_hz"),
        )
        recordings = {rid: partial(check, source) for rid, source in recordings.items()}
        settings["channels"] = None  # picked by fit_to_model
    staged, epoch_table, _, report = epoch_recordings(
        recordings,
        settings,
        training["preprocessing"],
        executor,
        tempfile.gettempdir(),
        sfreq_known=sampling_rate_known(training["dataset"]),
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
