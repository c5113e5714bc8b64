"""Nodes of the data_engineering pipeline: thin calls into epochstack.signals / io / models."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from epochstack.errors import InputDataError
from epochstack.io.csv import read_csv_recordings
from epochstack.io.edf import read_edf_recordings
from epochstack.io.h5 import read_h5_epochs
from epochstack.io.uea import read_uea_ts
from epochstack.models.splits import assign_folds
from epochstack.signals import preprocessing as pp
from epochstack.signals.recording import EpochedRecording, Recording
from epochstack.signals.synthetic import synthetic_recordings

logger = logging.getLogger(__name__)

FORMATS = ("synthetic", "edf", "h5", "uea_ts", "csv")
FLAG_COLUMNS = ["flag_flat", "flag_clipped", "flag_extreme"]
EVENT_TABLE_COLUMNS = ["recording_id", "subject_id", "onset_s", "duration_s", "label"]

RecordingSource = Callable[[], Recording | EpochedRecording]


def _given(value):
    return value


def _require(dataset: dict, *keys: str) -> None:
    for key in keys:
        node = dataset
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if not node:
            raise InputDataError(f"dataset.{key}", f"is required for dataset.format={dataset['format']!r}.", f"pass --params \"dataset.{key}=...\".")


def ingest_recordings(dataset: dict) -> dict[str, RecordingSource]:
    """Recording sources by id, lazily read: ``dataset.format`` alone picks the reader."""
    fmt = dataset.get("format")
    if fmt == "synthetic":
        syn = dataset["synthetic"]
        return synthetic_recordings(
            syn["task"], syn["n_subjects"], syn["hours_per_subject"], syn.get("sfreq"), syn["seed"],
            difficulty=syn.get("difficulty", "realistic"), population=syn.get("population"),
        )
    if fmt == "edf":
        edf = dataset["edf"]
        return read_edf_recordings(
            edf["path"], channels=dataset.get("channels"), hypnogram=edf.get("hypnogram", "auto"),
            subject_pattern=edf["subject_pattern"], expected_sfreq=edf.get("expected_sfreq"),
            label_epoch_s=edf.get("label_epoch_s", 30.0), wake_margin_min=edf.get("wake_margin_min"),
        )
    if fmt == "uea_ts":
        _require(dataset, "train_path", "test_path")
        cases = read_uea_ts(dataset["train_path"], split="train", sfreq=dataset.get("sfreq"))
        cases += read_uea_ts(dataset["test_path"], split="test", sfreq=dataset.get("sfreq"))
        return {case.recording_id: partial(_given, case) for case in cases}
    if fmt == "h5":
        _require(dataset, "h5.x_path")
        h5 = dataset["h5"]
        recs = read_h5_epochs(
            h5["x_path"], h5["y_path"], dataset_key=h5["dataset_key"], n_meta_columns=h5["n_meta_columns"],
            subject_column=h5["subject_column"], label_column=h5.get("label_column"), sfreq=dataset.get("sfreq"),
            channel_name=h5.get("channel_name", "EEG"),
        )
        return {rec.recording_id: partial(_given, rec) for rec in recs}
    if fmt == "csv":
        _require(dataset, "csv.signals_path")
        csv = dataset["csv"]
        recs = read_csv_recordings(
            csv["signals_path"], events_path=csv.get("events_path"), time_column=csv["time_column"],
            recording_column=csv["recording_column"], subject_column=csv["subject_column"],
            label_column=csv.get("label_column"), sfreq=dataset.get("sfreq"),
            channel_types=csv.get("channel_types"),
        )
        return {rec.recording_id: partial(_given, rec) for rec in recs}
    raise InputDataError("dataset.format", f"unknown format {fmt!r}.", f"use one of {list(FORMATS)}.")


def _epoch_one(source: RecordingSource, channels: list[str] | None, preprocessing: dict, label_mapping: str):
    """Load, validate, resample, filter and epoch one recording; returns (epochs, events)."""
    rec = source()
    events = pd.DataFrame(columns=EVENT_TABLE_COLUMNS)
    if isinstance(rec, Recording):
        rec = pp.pick_channels(rec, channels)
        pp.validate_recording(rec)
        rec = pp.resample(rec, preprocessing.get("resample_hz"))
        rec.signals = pp.filter_signals(rec.signals, rec.sfreq, rec.channel_types, preprocessing["filters"], preprocessing.get("notch_hz"))
        if rec.events is not None and len(rec.events):
            events = rec.events.assign(recording_id=rec.recording_id, subject_id=rec.subject_id)[EVENT_TABLE_COLUMNS]
        ep = preprocessing["epoch"]
        rec = pp.epoch_recording(rec, ep["window_s"], ep["step_s"], ep.get("min_event_overlap", 0.5), ep.get("background_label", "background"))
    else:
        if not np.isfinite(rec.epochs).all():
            raise InputDataError(rec.source, f"{rec.recording_id} has NaN/inf samples.", "impute or drop those cases before ingest.")
        rec.epochs = pp.filter_signals(rec.epochs, rec.sfreq, rec.channel_types, preprocessing["filters"], preprocessing.get("notch_hz"))
    if rec.labels is not None:
        rec.labels = pp.map_labels(rec.labels, label_mapping)
    rec.flags = pp.artefact_flags(rec.epochs, rec.channel_types, preprocessing["artefacts"])
    return rec, events


def _check_consistent(recordings: list[EpochedRecording]) -> None:
    first = recordings[0]
    for rec in recordings[1:]:
        if rec.channel_names != first.channel_names:
            raise InputDataError(
                rec.source, f"channels {rec.channel_names} differ from {first.channel_names} in {first.source}.",
                "pick common channels with dataset.channels.",
            )
        if not np.isclose(rec.sfreq, first.sfreq):
            raise InputDataError(
                rec.source, f"sampling rate {rec.sfreq} Hz differs from {first.sfreq} Hz in {first.source}.",
                "set preprocessing.resample_hz to a common rate.",
            )
        if rec.epochs.shape[2] != first.epochs.shape[2]:
            raise InputDataError(rec.source, f"epochs of {rec.epochs.shape[2]} samples differ from {first.epochs.shape[2]} in {first.source}.")


def _table_rows(rec: EpochedRecording, keep: np.ndarray) -> pd.DataFrame:
    labels = rec.labels if rec.labels is not None else np.full(rec.n_epochs, None, dtype=object)
    rows = pd.DataFrame({
        "epoch_id": [f"{rec.recording_id}_{i:06d}" for i in rec.epoch_index[keep]],
        "recording_id": rec.recording_id,
        "subject_id": str(rec.subject_id),
        "epoch_index": rec.epoch_index[keep].astype(np.int64),
        "t_start_s": rec.t_start_s[keep].astype(np.float64),
        "duration_s": rec.epochs.shape[2] / rec.sfreq,
        "label": pd.array(labels[keep], dtype="string"),
        "signal_row": np.arange(int(keep.sum()), dtype=np.int64),
        **{name: rec.flags[name][keep] for name in FLAG_COLUMNS},
        "source_split": pd.array([rec.source_split] * int(keep.sum()), dtype="string"),
    })
    rows["artefact"] = rows[FLAG_COLUMNS].any(axis=1)
    return rows


def preprocess_and_epoch(
    recordings: dict[str, RecordingSource], dataset: dict, preprocessing: dict, n_jobs: int = 2
) -> tuple[dict, pd.DataFrame, pd.DataFrame, dict]:
    """Epoch every recording (in parallel) and build the epoch table, events and a quality report.

    Epochs with unknown labels (and, when ``artefacts.exclude``, flagged epochs) are excluded;
    every exclusion is counted in the report and logged.
    """
    channels, mapping = dataset.get("channels"), dataset.get("label_mapping", "none")
    if not recordings:
        raise InputDataError(f"dataset.format={dataset.get('format')}", "no recordings found.", "check the dataset paths.")
    results = Parallel(n_jobs=n_jobs)(
        delayed(_epoch_one)(src, channels, preprocessing, mapping) for src in recordings.values()
    )
    epoched = [rec for rec, _ in results]
    _check_consistent(epoched)
    exclude_artefacts = bool(preprocessing["artefacts"].get("exclude", False))
    epochs, tables = {}, []
    excluded = {"unknown_label": 0, "artefact": 0}
    empty_recordings = []
    for rec in epoched:
        unknown = np.array([lab is None for lab in rec.labels]) if rec.labels is not None else np.zeros(rec.n_epochs, bool)
        artefact = np.any([rec.flags[f] for f in FLAG_COLUMNS], axis=0)
        if rec.labels is None or not unknown.all():
            excluded["unknown_label"] += int(unknown.sum())
        else:  # wholly unlabelled recordings (inference) keep every epoch
            unknown[:] = False
        drop_artefact = artefact & ~unknown if exclude_artefacts else np.zeros_like(artefact)
        excluded["artefact"] += int(drop_artefact.sum())
        keep = ~(unknown | drop_artefact)
        if not keep.any():
            empty_recordings.append(rec.recording_id)
            continue
        epochs[rec.recording_id] = rec.epochs[keep]
        tables.append(_table_rows(rec, keep))
    if not tables:
        raise InputDataError(f"dataset.format={dataset.get('format')}", "every epoch was excluded (unknown labels or artefacts).", "check the labels and preprocessing.artefacts.")
    table = pd.concat(tables, ignore_index=True).sort_values(["recording_id", "epoch_index"], ignore_index=True)
    events = pd.concat([ev for _, ev in results if len(ev)] or [pd.DataFrame(columns=EVENT_TABLE_COLUMNS)], ignore_index=True)
    events = events.astype({"recording_id": "string", "subject_id": "string", "onset_s": float, "duration_s": float, "label": "string"})
    n_total = int(sum(rec.n_epochs for rec in epoched))
    report = {
        "n_recordings": len(epoched),
        "n_subjects": int(table["subject_id"].nunique()),
        "n_epochs_total": n_total,
        "n_epochs_kept": len(table),
        "n_epochs_excluded": n_total - len(table),
        "excluded_by_reason": excluded,
        "recordings_without_epochs": empty_recordings,
        "n_epochs_flagged_artefact": int(table["artefact"].sum()),
        "class_counts": {str(k): int(v) for k, v in table["label"].value_counts().sort_index().items()},
        "n_events": len(events),
        "sfreq": float(epoched[0].sfreq),
        "channel_names": list(epoched[0].channel_names),
    }
    logger.info(
        "Kept %d of %d epochs from %d recordings; excluded %s; %d flagged as artefacts (kept).",
        report["n_epochs_kept"], n_total, len(epoched), excluded, report["n_epochs_flagged_artefact"],
    )
    store = {"epochs": epochs, "sfreq": epoched[0].sfreq, "channel_names": epoched[0].channel_names, "channel_types": epoched[0].channel_types}
    return store, table, events, report


def make_folds(epoch_table: pd.DataFrame, splits: dict) -> pd.DataFrame:
    """Subject-wise folds; fold -1 is the held-out test set."""
    folds = assign_folds(
        epoch_table, method=splits["method"], n_folds=splits["n_folds"], test_subjects=splits.get("test_subjects"),
        n_test_subjects=splits.get("n_test_subjects", 0), seed=splits["seed"],
    )
    counts = folds["fold"].value_counts().sort_index()
    logger.info("Folds (fold: epochs): %s", counts.to_dict())
    return folds


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
