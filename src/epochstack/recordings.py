"""One switch from ``dataset`` parameters to recordings: ``dataset.format`` alone picks the reader.

Training (the data_engineering pipeline), inference (the inference pipeline, the MLflow Model and
the REST service) all read recordings through :func:`read_recordings`, so a format added here is
read the same way everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from epochstack.errors import InputDataError
from epochstack.io.case_metadata import group_cases
from epochstack.io.csv import read_csv_recordings
from epochstack.io.edf import read_edf_recordings
from epochstack.io.h5 import read_h5_epochs
from epochstack.io.mat import read_mat_recordings
from epochstack.io.uea import read_uea_pair
from epochstack.signals.recording import EpochedRecording, Recording
from epochstack.synthetic import synthetic_recordings

logger = logging.getLogger(__name__)

FORMATS = ("synthetic", "edf", "mat", "h5", "uea_ts", "csv")
# Sources whose cases are epochs already (one trial per case): they carry no sampling rate.
EPOCHED_FORMATS = ("uea_ts", "h5")

RecordingSource = Callable[[], Recording | EpochedRecording]


def _given(value):
    return value


def _require(dataset: dict, *keys: str) -> None:
    for key in keys:
        node = dataset
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if not node:
            raise InputDataError(
                f"dataset.{key}",
                f"is required for dataset.format={dataset['format']!r}.",
                f'pass --params "dataset.{key}=...".',
            )


def sampling_rate_known(dataset: dict) -> bool:
    """False for sources without a rate of their own (UEA ``.ts``, HDF5) when ``dataset.sfreq`` is null."""
    return dataset.get("format") not in EPOCHED_FORMATS or dataset.get("sfreq") is not None


def read_recordings(dataset: dict) -> dict[str, RecordingSource]:
    """Recording sources by id, lazily read: ``dataset.format`` alone picks the reader."""
    fmt = dataset.get("format")
    if fmt in ("synthetic", "edf") and dataset.get("sfreq") is not None:
        logger.warning("dataset.sfreq is not used with dataset.format=%s (it has a rate).", fmt)
    if fmt == "synthetic":
        syn = dataset["synthetic"]
        return synthetic_recordings(
            syn["task"],
            syn["n_subjects"],
            syn["hours_per_subject"],
            syn.get("sfreq"),
            syn["seed"],
            difficulty=syn.get("difficulty", "realistic"),
            population=syn.get("population"),
        )
    if fmt == "edf":
        edf = dataset["edf"]
        return read_edf_recordings(
            edf["path"],
            channels=dataset.get("channels"),
            hypnogram=edf.get("hypnogram", "auto"),
            subject_pattern=edf["subject_pattern"],
            expected_sfreq=edf.get("expected_sfreq"),
            label_epoch_s=edf.get("label_epoch_s", 30.0),
            wake_margin_min=edf.get("wake_margin_min"),
        )
    if fmt == "mat":
        _require(dataset, "mat.path")
        return read_mat_recordings(dataset["mat"]["path"], **_mat_options(dataset["mat"]))
    if fmt == "uea_ts":
        _require(dataset, "train_path", "test_path")
        cases = read_uea_pair(
            dataset["train_path"],
            dataset["test_path"],
            sfreq=dataset.get("sfreq"),
            channels=dataset.get("channels"),
            unequal_length=(dataset.get("uea") or {}).get("unequal_length", "resample"),
        )
        paths = {"train": dataset["train_path"], "test": dataset["test_path"]}
        cases = group_cases(cases, paths, (dataset.get("uea") or {}).get("groups"))
        return {case.recording_id: partial(_given, case) for case in cases}
    if fmt == "h5":
        _require(dataset, "h5.x_path")
        h5 = dataset["h5"]
        recs = read_h5_epochs(
            h5["x_path"],
            h5["y_path"],
            dataset_key=h5["dataset_key"],
            n_meta_columns=h5["n_meta_columns"],
            subject_column=h5["subject_column"],
            label_column=h5.get("label_column"),
            sfreq=dataset.get("sfreq"),
            channel_name=h5.get("channel_name", "EEG"),
            channels=dataset.get("channels"),
        )
        return {rec.recording_id: partial(_given, rec) for rec in recs}
    if fmt == "csv":
        _require(dataset, "csv.signals_path")
        csv = dataset["csv"]
        recs = read_csv_recordings(
            csv["signals_path"],
            events_path=csv.get("events_path"),
            time_column=csv["time_column"],
            recording_column=csv["recording_column"],
            subject_column=csv["subject_column"],
            label_column=csv.get("label_column"),
            sfreq=dataset.get("sfreq"),
            channel_types=csv.get("channel_types"),
        )
        return {rec.recording_id: partial(_given, rec) for rec in recs}
    raise InputDataError(
        "dataset.format", f"unknown format {fmt!r}.", f"use one of {list(FORMATS)}."
    )


def _mat_options(mat: dict) -> dict:
    """The ``dataset.mat`` block as keyword arguments of :func:`read_mat_recordings`."""
    keys = (
        "signals_variable",
        "sfreq_variable",
        "channels_variable",
        "labels_variable",
        "label_epoch_s",
        "label_codes",
        "subject_pattern",
    )
    return {key: mat[key] for key in keys if mat.get(key) is not None}
