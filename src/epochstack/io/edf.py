"""EDF / EDF+ / BDF recordings: a folder's files checked, then read one at a time.

Reading goes through MNE. Each recording's hypnogram (a hypnogram EDF or CSV beside it, or its
own EDF+ annotations: :mod:`epochstack.io.hypnograms`) gives per-epoch stage labels; every other
annotation becomes an event. :mod:`epochstack.io.edf_writer` writes recordings as EDF+.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import mne
import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.io.hypnograms import (
    HYPNOGRAM_MODES,
    annotation_table,
    check_hypnogram_file,
    choose_hypnogram,
    epoch_stage_texts,
    is_hypnogram_name,
    pair_hypnogram_csvs,
    pair_hypnogram_files,
    read_hypnogram,
    recording_id_from_name,
)
from epochstack.io.labels import check_annotation_rows, is_stage_annotation, normalise_stage
from epochstack.signals.recording import Header, LazyRecording, Recording

logger = logging.getLogger(__name__)

EDF_SUFFIXES = (".edf", ".bdf")
# Sleep-EDF subjects (SC4ssN / ST7ssN: ss = subject, N = night) keep both nights together;
# BIDS-style names (sub-003_night-1) the sub-<label> entity; any other file name: the part
# before the first "_", "-" or ".".
DEFAULT_SUBJECT_PATTERN = r"^(SC4\d{2}|ST7\d{2}|sub-[^_.]+|[^_\-.]+)"
# MNE's name for samples appended to fill the last EDF data record (written by write_edf too).
PADDING_ANNOTATION = "BAD_ACQ_SKIP"

_VOLT_UNITS = {"v", "mv", "uv", "µv", "μv", "nv"}
_TYPE_HINTS = (  # first match wins, on the lower-cased channel name
    ("ecg", "misc"),
    ("ekg", "misc"),
    ("resp", "misc"),
    ("temp", "misc"),
    ("event", "misc"),
    ("eog", "eog"),
    ("emg", "emg"),
    ("eeg", "eeg"),
    ("acc", "acc"),
    ("heart", "hr"),
    ("hr", "hr"),
)


def read_edf_recordings(
    folder: str | Path,
    *,
    channels: list[str] | None = None,
    hypnogram: str = "auto",
    subject_pattern: str = DEFAULT_SUBJECT_PATTERN,
    expected_sfreq: float | None = None,
    label_epoch_s: float = 30.0,
    wake_margin_min: float | None = None,
) -> dict[str, Callable[[], Recording]]:
    """Find the EDF/BDF recordings of a folder; return one lazy loader per recording id.

    Headers are checked now (channels, sampling rate, hypnogram pairing, subject id), so a bad
    folder fails before any signal is read. Each loader is a picklable ``LazyRecording``.
    ``wake_margin_min`` (e.g. 30) crops each recording to its sleep period and that many
    minutes of the epochs around it (Sleep-EDF's day-long files); ``None`` keeps everything.
    """
    folder = Path(folder)
    if hypnogram not in HYPNOGRAM_MODES:
        raise InputDataError(
            "dataset.edf.hypnogram",
            f"unknown mode {hypnogram!r}.",
            f"use one of {HYPNOGRAM_MODES}.",
        )
    if wake_margin_min is not None and not float(wake_margin_min) >= 0:
        raise InputDataError(
            "dataset.edf.wake_margin_min",
            f"must be a number of minutes >= 0 or null, got {wake_margin_min!r}.",
            "set e.g. 30 (the usual margin around Sleep-EDF nights) or null to keep everything.",
        )
    if not folder.is_dir():
        raise InputDataError(
            folder, "folder not found.", "set dataset.edf.path to a folder of .edf/.bdf files."
        )
    edf_files = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in EDF_SUFFIXES and p.is_file()
    )
    hypnogram_files = [p for p in edf_files if is_hypnogram_name(p)]
    psg_files = [p for p in edf_files if not is_hypnogram_name(p)]
    if not psg_files:
        raise InputDataError(
            folder,
            "no .edf/.bdf recordings in this folder.",
            "point dataset.edf.path at the folder holding the recordings.",
        )

    hypnogram_of = pair_hypnogram_files(psg_files, hypnogram_files)
    csv_hypnogram_of = pair_hypnogram_csvs(folder, psg_files)
    subject_regex = re.compile(subject_pattern)
    loaders: dict[str, Callable[[], Recording]] = {}
    for path in psg_files:
        recording_id = recording_id_from_name(path)
        if recording_id in loaders:
            raise InputDataError(
                path,
                f"two files give the recording id {recording_id!r}.",
                "keep one file per recording in the folder.",
            )
        header = _check_header(path, channels, expected_sfreq, label_epoch_s)
        _warn_if_truncated(path)
        label_source, label_kind = choose_hypnogram(
            path, hypnogram, hypnogram_of.get(path), csv_hypnogram_of.get(path)
        )
        if label_source is not None:
            check_hypnogram_file(label_source, label_kind)
        loaders[recording_id] = LazyRecording(
            partial(
                load_edf_recording,
                path,
                recording_id=recording_id,
                subject_id=subject_id_from_name(path, subject_regex, subject_pattern),
                channels=channels,
                hypnogram_path=label_source,
                hypnogram_kind=label_kind,
                label_epoch_s=label_epoch_s,
                wake_margin_min=wake_margin_min,
            ),
            header,
        )
    return loaders


def load_edf_recording(
    path: str | Path,
    *,
    recording_id: str,
    subject_id: str,
    channels: list[str] | None = None,
    hypnogram_path: Path | None = None,
    hypnogram_kind: str = "annotations",
    label_epoch_s: float = 30.0,
    wake_margin_min: float | None = None,
) -> Recording:
    """Read one EDF/BDF file (signals in µV for EEG/EOG/EMG) with its hypnogram and events.

    Channels stored at a lower rate than the others are interpolated linearly to the highest
    rate; with ``wake_margin_min`` the recording is cropped to its sleep period and that margin.
    """
    path = Path(path)
    raw = _read_raw(path, channels, preload=True)
    if channels is not None:
        raw.reorder_channels(list(channels))
    annotations = annotation_table(raw.annotations)
    raw, annotations = _crop_padding(raw, annotations)
    is_stage = annotations["label"].map(is_stage_annotation).astype(bool)
    stages = annotations[is_stage]
    events = annotations[~is_stage].sort_values("onset_s", kind="stable").reset_index(drop=True)
    check_annotation_rows(stages, f"{path} (EDF+ stage annotations)", row_name="annotation")
    if hypnogram_kind in ("edf", "csv"):
        # Every row of a hypnogram file is a stage: unknown names are unscored epochs (listed
        # in a warning when the folder is read), never events or classes.
        stages = pd.concat(
            [stages, read_hypnogram(hypnogram_path, hypnogram_kind)], ignore_index=True
        )

    units = raw._orig_units  # MNE keeps the header's physical dimensions only privately
    volts = np.array([units.get(name, "").strip().lower() in _VOLT_UNITS for name in raw.ch_names])
    signals = raw.get_data()
    _interpolate_slow_channels(path, raw, signals)
    signals[volts] *= 1e6  # MNE returns volts; the contract is µV
    epoch_labels = None
    if len(stages):
        texts = epoch_stage_texts(stages, raw.n_times / raw.info["sfreq"], label_epoch_s)
        epoch_labels = np.array(
            [None if t is None else normalise_stage(t) for t in texts], dtype=object
        )
        _log_unstaged(recording_id, texts, epoch_labels)
    recording = Recording(
        recording_id=recording_id,
        subject_id=subject_id,
        signals=signals.astype(np.float32),
        sfreq=float(raw.info["sfreq"]),
        channel_names=list(raw.ch_names),
        channel_types=[channel_type(name, units.get(name, "")) for name in raw.ch_names],
        epoch_labels=epoch_labels,
        label_epoch_s=label_epoch_s if epoch_labels is not None else None,
        events=events,
        source=str(path),
    )
    return (
        recording if wake_margin_min is None else crop_to_sleep(recording, float(wake_margin_min))
    )


def crop_to_sleep(recording: Recording, margin_min: float) -> Recording:
    """The sleep period (first to last epoch staged other than ``W``) and ``margin_min`` minutes
    of epochs on each side; the rest, and events outside it, are dropped (with a warning that
    counts them). Unlabelled recordings and recordings without sleep are returned whole."""
    labels = recording.epoch_labels
    asleep = (
        np.flatnonzero([label not in (None, "W") for label in labels]) if labels is not None else []
    )
    if len(asleep) == 0:
        return recording
    margin = int(round(margin_min * 60 / recording.label_epoch_s))
    first, stop = max(0, asleep[0] - margin), min(len(labels), asleep[-1] + 1 + margin)
    per_epoch = int(round(recording.label_epoch_s * recording.sfreq))
    n_dropped = first + len(labels) - stop
    if n_dropped == 0 and stop * per_epoch >= recording.n_samples:
        return recording
    start_s = first * recording.label_epoch_s
    recording.signals = recording.signals[:, first * per_epoch : stop * per_epoch]
    recording.epoch_labels = labels[first:stop]
    if recording.events is not None:
        events = recording.events.assign(onset_s=recording.events["onset_s"] - start_s)
        inside = (events["onset_s"] + events["duration_s"] > 0) & (
            events["onset_s"] < recording.duration_s
        )
        recording.events = events[inside].reset_index(drop=True)
    logger.warning(
        "%s: kept the sleep period and %g min around it (%.1f of %.1f h): %d epochs before and %d after "
        "are dropped (dataset.edf.wake_margin_min).",
        recording.recording_id,
        margin_min,
        recording.duration_s / 3600,
        len(labels) * recording.label_epoch_s / 3600,
        first,
        len(labels) - stop,
    )
    return recording


def _log_unstaged(recording_id: str, texts: np.ndarray, labels: np.ndarray) -> None:
    """Warn with the count of epochs that carry no stage, by annotation (``Sleep stage ?``,
    ``Movement time``, unknown names, gaps): the pipeline excludes them as unknown labels."""
    unstaged = [
        ("no annotation" if text is None else text)
        for text, label in zip(texts, labels, strict=True)
        if label is None
    ]
    if unstaged:
        counts = pd.Series(unstaged).value_counts().sort_index().to_dict()
        logger.warning(
            "%s: %d of %d epochs carry no sleep stage (%s); they are excluded and counted as unknown labels.",
            recording_id,
            len(unstaged),
            len(labels),
            ", ".join(f"{name!r}: {n}" for name, n in counts.items()),
        )


def channel_type(name: str, unit: str = "") -> str:
    """Channel type from its name (``EEG Fpz-Cz`` -> ``eeg``), else its unit (volts -> ``eeg``)."""
    lowered = name.lower()
    for hint, kind in _TYPE_HINTS:
        if re.search(rf"(?<![a-z]){hint}", lowered):
            return kind
    return "eeg" if unit.strip().lower() in _VOLT_UNITS else "misc"


def _read_raw(path: Path, channels: list[str] | None, *, preload: bool) -> mne.io.BaseRaw:
    reader = mne.io.read_raw_bdf if path.suffix.lower() == ".bdf" else mne.io.read_raw_edf
    try:
        available = reader(path, preload=False, verbose="error").ch_names
    except Exception as error:  # MNE raises many types for broken headers
        raise InputDataError(
            path,
            f"cannot read the EDF/BDF header ({error}).",
            "check the file is a complete EDF/BDF file or remove it.",
        ) from error
    if channels is not None:
        missing = [name for name in channels if name not in available]
        if missing:
            raise InputDataError(
                path,
                f"channel(s) {missing} not in the file; available: {available}.",
                "set dataset.channels to names from the available list (or null for all).",
            )
    try:
        raw = reader(path, include=channels, preload=preload, verbose="error")
    except Exception as error:  # MNE raises many types for broken data records
        raise InputDataError(
            path,
            f"cannot read the EDF/BDF signals ({type(error).__name__}: {error}).",
            "check the file is a complete EDF/BDF file (copy or export it again) or remove it.",
        ) from error
    if raw.n_times == 0:
        raise InputDataError(path, "the file holds no samples.", "remove it or re-export it.")
    return raw


def _check_header(
    path: Path, channels: list[str] | None, expected_sfreq: float | None, label_epoch_s: float
) -> Header:
    """The file's header, checked: channels, rate, a hypnogram epoch of at least one sample."""
    raw = _read_raw(path, channels, preload=False)
    sfreq = float(raw.info["sfreq"])
    if label_epoch_s * sfreq < 1:
        raise InputDataError(
            "dataset.edf.label_epoch_s",
            f"a hypnogram epoch of {label_epoch_s:g} s is shorter than one sample of "
            f"{path.name} ({sfreq:g} Hz).",
            "set it to the scoring epoch of the hypnograms (30 s for AASM, 4 or 10 s in rodents).",
        )
    if expected_sfreq is not None and not np.isclose(raw.info["sfreq"], expected_sfreq):
        raise InputDataError(
            path,
            f"sampling rate {raw.info['sfreq']:g} Hz, expected {expected_sfreq:g} Hz.",
            "set dataset.edf.expected_sfreq: null and preprocessing.resample_hz to a common rate.",
        )
    slow = _slow_channels(raw)
    if slow:
        logger.info(
            "%s: channels %s are stored at %s Hz; they are interpolated linearly to %g Hz.",
            path,
            list(slow),
            sorted(set(slow.values())),
            raw.info["sfreq"],
        )
    types = tuple(channel_type(name, raw._orig_units.get(name, "")) for name in raw.ch_names)
    return Header(str(path), sfreq, len(raw.ch_names), int(raw.n_times), types)


def _warn_if_truncated(path: Path) -> None:
    """Warn, naming the file and what is missing, when it holds fewer data records than its
    header declares or ends inside a record (MNE then infers a shorter recording quietly).

    Written by hand: MNE overwrites the declared record count with the inferred one, and
    edfio refuses such files; the fixed-width header fields are all this needs.
    """
    with path.open("rb") as file:
        head = file.read(256)
        try:
            n_signals = int(head[252:256])
            header_bytes, declared = int(head[184:192]), int(head[236:244])
            record_s = float(head[244:252])
            file.seek(256 + n_signals * 216)  # the "samples per data record" field of each signal
            samples = [int(file.read(8)) for _ in range(n_signals)]
        except ValueError:
            return  # MNE has read the header already; leave odd headers to it
    record_bytes = sum(samples) * (3 if path.suffix.lower() == ".bdf" else 2)
    data_bytes = path.stat().st_size - header_bytes
    if record_bytes <= 0 or data_bytes < 0:
        return
    whole, partial = divmod(data_bytes, record_bytes)
    if declared > whole:
        logger.warning(
            "%s: truncated: the header declares %d data records (%.0f s), the file holds %d "
            "(%.0f s); %.0f s (%.0f %%) of the recording are missing and only the rest is used. "
            "Copy or export the file again to keep them.",
            path,
            declared,
            declared * record_s,
            whole,
            whole * record_s,
            (declared - whole) * record_s,
            100 * (declared - whole) / declared,
        )
    elif partial and declared < 0:
        logger.warning(
            "%s: truncated: the file ends inside a data record (%d of %d bytes); that last "
            "partial record (< %.0f s) is not used.",
            path,
            partial,
            record_bytes,
            record_s,
        )


def _slow_channels(raw: mne.io.BaseRaw) -> dict[str, float]:
    """Channels stored below the file's highest rate (e.g. Sleep-EDF's 1-Hz EMG envelope): rate."""
    extras = raw._raw_extras[0]  # MNE keeps per-channel rates only privately
    native = extras["n_samps"][extras["sel"]] / extras["record_length"][0]
    return {
        name: float(rate)
        for name, rate in zip(raw.ch_names, native, strict=True)
        if rate < raw.info["sfreq"]
    }


def _interpolate_slow_channels(path: Path, raw: mne.io.BaseRaw, signals: np.ndarray) -> None:
    """Replace MNE's FFT-resampled slow channels by linear interpolation of their own samples.

    MNE brings every channel to the highest rate with FFT resampling, which rings around the
    steps of a slow envelope (a 1-Hz RMS envelope then dips below zero). Interpolating between
    the stored samples (EDF time ``i / rate``) keeps every value within its neighbours'.
    In place on ``signals`` (MNE's units, rows in ``raw.ch_names`` order).
    """
    times = raw.times
    for name, rate in _slow_channels(raw).items():
        own = _read_raw(path, [name], preload=True)
        stored = own.get_data()[0]
        signals[raw.ch_names.index(name)] = np.interp(times, np.arange(len(stored)) / rate, stored)


def subject_id_from_name(
    path: Path, regex: re.Pattern, pattern: str, parameter: str = "dataset.edf.subject_pattern"
) -> str:
    """Group 1 of ``regex`` on the file name (an error naming the file and the pattern if none)."""
    match = regex.search(path.name)
    if match is None or not match.group(1):
        raise InputDataError(
            path,
            f"file name does not match {parameter} {pattern!r}.",
            "set a regex whose group 1 is the subject id (files of one subject must share it).",
        )
    return match.group(1)


def _crop_padding(
    raw: mne.io.BaseRaw, annotations: pd.DataFrame
) -> tuple[mne.io.BaseRaw, pd.DataFrame]:
    """Drop the samples that fill the last data record (a padding annotation running to the end)."""
    padding = annotations["label"] == PADDING_ANNOTATION
    ends_at_end = (annotations["onset_s"] + annotations["duration_s"]) >= raw.times[-1]
    tail = annotations[padding & ends_at_end]
    if len(tail):
        n_keep = int(round(tail["onset_s"].min() * raw.info["sfreq"]))
        raw.crop(tmax=(n_keep - 1) / raw.info["sfreq"])
    return raw, annotations[~padding].reset_index(drop=True)
