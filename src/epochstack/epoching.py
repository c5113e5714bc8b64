"""Recordings -> epochs on disk: validate, resample, filter, epoch, flag artefacts, in parallel.

:func:`epoch_recordings` is the one implementation, for training (the data_engineering
pipeline) and for new recordings (:mod:`epochstack.inference`). Recordings are epoched by the
executor's workers into a staging folder, one recording in memory per worker; nothing else is
written until every recording is known to be good, and on any error the staging folder is
removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.execution import Executor
from epochstack.ids import safe_id, safe_ids, warn_renamed
from epochstack.recordings import RecordingSource, sampling_rate_known
from epochstack.signals import preprocessing as pp
from epochstack.signals.epoch_store import StagedEpochStore, new_staging_dir, stage_recording
from epochstack.signals.limits import check_against_data
from epochstack.signals.recording import EpochedRecording, Recording, known_header

logger = logging.getLogger(__name__)

FLAG_COLUMNS = ["flag_flat", "flag_clipped", "flag_extreme"]
EVENT_TABLE_COLUMNS = ["recording_id", "subject_id", "onset_s", "duration_s", "label"]
EXCLUSION_REASONS = ("unknown_label", "artefact")


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
    renamed: dict[str, str] = field(default_factory=dict)  # safe id -> id as the source gave it


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
    ids, renamed = safe_ids(rec.source, recording_id=rec.recording_id, subject_id=rec.subject_id)
    rec.recording_id = recording_id = ids["recording_id"]
    rec.subject_id = ids["subject_id"]
    if renamed and not events.empty:
        events = events.assign(**ids)
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
        renamed,
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
    *,
    sfreq_known: bool | None = None,
) -> tuple[StagedEpochStore, pd.DataFrame, pd.DataFrame, dict]:
    """Epoch every recording on the executor into a staging folder; build the epoch table,
    events and a quality report.

    Epochs with unknown labels (and, when ``artefacts.exclude``, flagged epochs) are excluded;
    every exclusion is counted in the report and logged. On any error the staging folder is
    removed and nothing else has been written. ``sfreq_known`` (default: whether ``dataset``'s
    source gives a rate) False skips every Hz-based step and marks the store rate-free.
    """
    if not recordings:
        raise InputDataError(
            f"dataset.format={dataset.get('format')}",
            "no recordings found.",
            "check the dataset paths.",
        )
    for recording_id, source in recordings.items():  # a '../' id is refused before any work
        safe_id(recording_id, getattr(known_header(source), "source", recording_id), "recording_id")
    known_rate = sampling_rate_known(dataset) if sfreq_known is None else bool(sfreq_known)
    if not known_rate:
        preprocessing = _without_rate(preprocessing)
    rate_parameter = "dataset.sfreq" if dataset.get("sfreq") is not None else None
    headers = [known_header(source, rate_parameter) for source in recordings.values()]
    check_against_data(
        [h for h in headers if h is not None],
        preprocessing,
        staging_dir,
        n_parallel=Executor.from_params(executor).workers_here(len(recordings)),
    )
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
    renamed = {new: old for s in summaries for new, old in s.renamed.items()}
    if renamed:
        report["renamed_ids"] = renamed
        warn_renamed(renamed, "data_quality_report.renamed_ids")
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
