"""Nodes of the data_engineering pipeline: thin calls into epochstack.signals / io / models.

Nothing is saved until everything is known to be good: recordings are epoched by parallel
workers into a staging folder (one recording in memory per worker), the split is checked, and
only the last node hands the outputs to the catalog, which moves the staged epochs into place
in one rename. A failing run leaves the outputs of the previous run as they were.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.execution import Executor
from epochstack.ids import check_id
from epochstack.io.case_metadata import group_cases
from epochstack.io.csv import read_csv_recordings
from epochstack.io.edf import read_edf_recordings
from epochstack.io.h5 import read_h5_epochs
from epochstack.io.uea import read_uea_pair
from epochstack.models.splits import assign_folds
from epochstack.signals import preprocessing as pp
from epochstack.signals.epoch_store import StagedEpochStore, new_staging_dir, stage_recording
from epochstack.signals.recording import EpochedRecording, Recording
from epochstack.signals.synthetic import synthetic_recordings

logger = logging.getLogger(__name__)

FORMATS = ("synthetic", "edf", "h5", "uea_ts", "csv")
FLAG_COLUMNS = ["flag_flat", "flag_clipped", "flag_extreme"]
EVENT_TABLE_COLUMNS = ["recording_id", "subject_id", "onset_s", "duration_s", "label"]
EXCLUSION_REASONS = ("unknown_label", "artefact")

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
    return dataset.get("format") not in ("uea_ts", "h5") or dataset.get("sfreq") is not None


def ingest_recordings(dataset: dict) -> dict[str, RecordingSource]:
    """Recording sources by id, lazily read: ``dataset.format`` alone picks the reader."""
    fmt = dataset.get("format")
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


@dataclass
class RecordingSummary:
    """What a worker returns for one recording: its table rows and events, never its signals."""

    recording_id: str
    source: str
    sfreq: float
    channel_names: list[str]
    channel_types: list[str]
    n_times: int
    n_epochs: int
    rows: pd.DataFrame
    events: pd.DataFrame
    excluded: dict[str, int] = field(default_factory=dict)


def _epoch_one(
    source: RecordingSource, channels: list[str] | None, preprocessing: dict, label_mapping: str
) -> tuple[EpochedRecording, pd.DataFrame]:
    """Load, validate, resample, filter and epoch one recording; returns (epochs, events)."""
    rec = source()
    events = pd.DataFrame(columns=EVENT_TABLE_COLUMNS)
    if isinstance(rec, Recording):
        rec = pp.pick_channels(rec, channels)
        pp.validate_recording(rec)
        rec = pp.resample(rec, preprocessing.get("resample_hz"))
        rec.signals = pp.filter_signals(
            rec.signals,
            rec.sfreq,
            rec.channel_types,
            preprocessing["filters"],
            preprocessing.get("notch_hz"),
        )
        if rec.events is not None and len(rec.events):
            events = rec.events.assign(recording_id=rec.recording_id, subject_id=rec.subject_id)[
                EVENT_TABLE_COLUMNS
            ]
        ep = preprocessing["epoch"]
        rec = pp.epoch_recording(
            rec,
            ep["window_s"],
            ep["step_s"],
            ep.get("min_event_overlap", 0.5),
            ep.get("background_label", "background"),
        )
    else:
        if not np.isfinite(rec.epochs).all():
            raise InputDataError(
                rec.source,
                f"{rec.recording_id} has NaN/inf samples.",
                "impute or drop those cases before ingest.",
            )
        rec.epochs = pp.filter_signals(
            rec.epochs,
            rec.sfreq,
            rec.channel_types,
            preprocessing["filters"],
            preprocessing.get("notch_hz"),
        )
    if rec.labels is not None:
        rec.labels = pp.map_labels(rec.labels, label_mapping, rec.source)
    rec.flags = pp.artefact_flags(rec.epochs, rec.channel_types, preprocessing["artefacts"])
    return rec, events


def _table_rows(rec: EpochedRecording, keep: np.ndarray) -> pd.DataFrame:
    labels = rec.labels if rec.labels is not None else np.full(rec.n_epochs, None, dtype=object)
    rows = pd.DataFrame(
        {
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
        }
    )
    rows["artefact"] = rows[FLAG_COLUMNS].any(axis=1)
    return rows


def _stage_one(
    source: RecordingSource, *, channels, preprocessing: dict, label_mapping: str, staging_dir: Path
) -> RecordingSummary:
    """One worker task: epoch one recording, write its kept epochs to the staging folder."""
    rec, events = _epoch_one(source, channels, preprocessing, label_mapping)
    recording_id = check_id(rec.recording_id, rec.source, "recording_id")
    check_id(rec.subject_id, rec.source, "subject_id")
    unknown = (
        np.array([lab is None for lab in rec.labels])
        if rec.labels is not None
        else np.zeros(rec.n_epochs, bool)
    )
    if rec.labels is not None and unknown.all():  # a wholly unlabelled recording keeps its epochs
        unknown[:] = False
    artefact = np.any([rec.flags[f] for f in FLAG_COLUMNS], axis=0)
    drop_artefact = (
        artefact & ~unknown
        if preprocessing["artefacts"].get("exclude", False)
        else np.zeros_like(artefact)
    )
    keep = ~(unknown | drop_artefact)
    if keep.any():
        stage_recording(staging_dir, recording_id, rec.epochs[keep], rec.source)
    return RecordingSummary(
        recording_id,
        str(rec.source),
        float(rec.sfreq),
        list(rec.channel_names),
        list(rec.channel_types),
        int(rec.epochs.shape[2]),
        rec.n_epochs,
        _table_rows(rec, keep),
        events,
        {"unknown_label": int(unknown.sum()), "artefact": int(drop_artefact.sum())},
    )


def _check_consistent(summaries: list[RecordingSummary]) -> None:
    first = summaries[0]
    seen: dict[str, str] = {}
    for s in summaries:
        if s.recording_id in seen:
            raise InputDataError(
                s.source,
                f"recording id {s.recording_id!r} is also given by {seen[s.recording_id]}.",
                "give every recording its own id (file name or recording column).",
            )
        seen[s.recording_id] = s.source
        if s.channel_names != first.channel_names:
            raise InputDataError(
                s.source,
                f"channels {s.channel_names} differ from {first.channel_names} in {first.source}.",
                "pick common channels with dataset.channels.",
            )
        if not np.isclose(s.sfreq, first.sfreq):
            raise InputDataError(
                s.source,
                f"sampling rate {s.sfreq} Hz differs from {first.sfreq} Hz in {first.source}.",
                "set preprocessing.resample_hz to a common rate.",
            )
        if s.n_times != first.n_times:
            raise InputDataError(
                s.source,
                f"epochs of {s.n_times} samples differ from {first.n_times} in {first.source}.",
                "set dataset.uea.unequal_length, or resample the recordings to one rate.",
            )


def _without_rate(preprocessing: dict) -> dict:
    """Preprocessing with every Hz-based step (filters, notch, resampling) switched off."""
    active = [
        t
        for t, f in (preprocessing.get("filters") or {}).items()
        if f and (f.get("l_freq") or f.get("h_freq"))
    ]
    if active or preprocessing.get("notch_hz") or preprocessing.get("resample_hz"):
        logger.warning(
            "The source gives no sampling rate (dataset.sfreq is null): filters (%s), notch and resampling "
            "are not applied. Set dataset.sfreq to apply them.",
            ", ".join(active) or "none",
        )
    return {**preprocessing, "filters": {}, "notch_hz": None, "resample_hz": None}


def epoch_recordings(
    recordings: dict[str, RecordingSource],
    dataset: dict,
    preprocessing: dict,
    executor: dict,
    staging_dir: str,
) -> tuple[StagedEpochStore, pd.DataFrame, pd.DataFrame, dict]:
    """Epoch every recording on the executor into a staging folder; build the epoch table,
    events and a quality report.

    Epochs with unknown labels (and, when ``artefacts.exclude``, flagged epochs) are excluded;
    every exclusion is counted in the report and logged. On any error the staging folder is
    removed and nothing else has been written.
    """
    if not recordings:
        raise InputDataError(
            f"dataset.format={dataset.get('format')}",
            "no recordings found.",
            "check the dataset paths.",
        )
    known_rate = sampling_rate_known(dataset)
    if not known_rate:
        preprocessing = _without_rate(preprocessing)
    staging = new_staging_dir(staging_dir)
    task = partial(
        _stage_one,
        channels=dataset.get("channels"),
        preprocessing=preprocessing,
        label_mapping=dataset.get("label_mapping", "none"),
        staging_dir=staging,
    )
    try:
        summaries = Executor.from_params(executor).map(
            task, list(recordings.values()), desc="epoching"
        )
        _check_consistent(summaries)
        staged, table, events, report = _assemble(summaries, dataset, staging, known_rate)
    except BaseException:
        StagedEpochStore(staging, 1.0, [], [], 0, []).discard()
        raise
    return staged, table, events, report


def _assemble(summaries: list[RecordingSummary], dataset: dict, staging: Path, known_rate: bool):
    first = summaries[0]
    kept = [s for s in summaries if len(s.rows)]
    if not kept:
        raise InputDataError(
            f"dataset.format={dataset.get('format')}",
            "every epoch was excluded (unknown labels or artefacts).",
            "check the labels and preprocessing.artefacts.",
        )
    table = pd.concat([s.rows for s in kept], ignore_index=True).sort_values(
        ["recording_id", "epoch_index"], ignore_index=True
    )
    pp.check_mapped_classes(table, dataset.get("label_mapping", "none"))
    events = pd.concat(
        [s.events for s in summaries if len(s.events)]
        or [pd.DataFrame(columns=EVENT_TABLE_COLUMNS)],
        ignore_index=True,
    )
    events = events.astype(
        {
            "recording_id": "string",
            "subject_id": "string",
            "onset_s": float,
            "duration_s": float,
            "label": "string",
        }
    )
    excluded = {
        reason: sum(s.excluded.get(reason, 0) for s in summaries) for reason in EXCLUSION_REASONS
    }
    n_total = sum(s.n_epochs for s in summaries)
    report = {
        "n_recordings": len(summaries),
        "n_subjects": int(table["subject_id"].nunique()),
        "n_epochs_total": n_total,
        "n_epochs_kept": len(table),
        "n_epochs_excluded": n_total - len(table),
        "excluded_by_reason": excluded,
        "recordings_without_epochs": [s.recording_id for s in summaries if not len(s.rows)],
        "n_epochs_flagged_artefact": int(table["artefact"].sum()),
        "class_counts": {
            str(k): int(v) for k, v in table["label"].value_counts().sort_index().items()
        },
        "n_events": len(events),
        "sfreq": first.sfreq,
        "sfreq_known": known_rate,
        "channel_names": list(first.channel_names),
    }
    logger.info(
        "Kept %d of %d epochs from %d recordings; excluded %s; %d flagged as artefacts (kept).",
        len(table),
        n_total,
        len(summaries),
        excluded,
        report["n_epochs_flagged_artefact"],
    )
    if report["recordings_without_epochs"]:
        logger.warning(
            "Recordings with no epoch left after exclusions: %s.",
            report["recordings_without_epochs"],
        )
    staged = StagedEpochStore(
        staging,
        first.sfreq,
        first.channel_names,
        first.channel_types,
        first.n_times,
        [s.recording_id for s in kept],
        known_rate,
    )
    return staged, table, events, report


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
        test_subjects=splits.get("test_subjects"),
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
