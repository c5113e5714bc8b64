"""EDF / EDF+ / BDF recordings with their hypnograms and event annotations.

Reading goes through MNE. A recording's hypnogram is found, in this order (``hypnogram="auto"``):

1. a hypnogram EDF beside it, matched the Sleep-EDF way: ``SC4001E0-PSG.edf`` pairs with
   ``SC4001EC-Hypnogram.edf`` because the names before ``-PSG``/``-Hypnogram`` agree once their
   last character (the scorer's code) is dropped; identical names also match;
2. a CSV ``<stem>_hypnogram.csv``, ``<stem>-Hypnogram.csv`` or ``<stem>.csv`` with columns
   ``onset, duration, label`` (seconds from the recording start);
3. EDF+ annotations in the recording itself.

Stage annotations become per-epoch labels; every other annotation becomes an event.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from fractions import Fraction
from functools import partial
from pathlib import Path

import edfio
import mne
import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.io.labels import (
    check_annotation_rows,
    is_stage_annotation,
    normalise_stage,
    unknown_stage_names,
)
from epochstack.io.tables import read_csv_table
from epochstack.signals.recording import EVENT_COLUMNS, Header, LazyRecording, Recording

logger = logging.getLogger(__name__)

EDF_SUFFIXES = (".edf", ".bdf")
HYPNOGRAM_MODES = ("auto", "annotations", "edf", "csv")
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
_WRITE_UNITS = {"eeg": "uV", "eog": "uV", "emg": "uV", "acc": "g", "hr": "bpm"}
_STAGE_TEXT = {"W": "W", "N1": "1", "N2": "2", "N3": "3", "REM": "R", "NREM": "NREM"}
_UNSCORED_TEXT = "Sleep stage ?"


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
    hypnogram_files = [p for p in edf_files if _is_hypnogram_name(p)]
    psg_files = [p for p in edf_files if not _is_hypnogram_name(p)]
    if not psg_files:
        raise InputDataError(
            folder,
            "no .edf/.bdf recordings in this folder.",
            "point dataset.edf.path at the folder holding the recordings.",
        )

    hypnogram_of = _pair_hypnogram_files(psg_files, hypnogram_files)
    csv_hypnogram_of = _pair_hypnogram_csvs(folder, psg_files)
    subject_regex = re.compile(subject_pattern)
    loaders: dict[str, Callable[[], Recording]] = {}
    for path in psg_files:
        recording_id = _recording_id(path)
        if recording_id in loaders:
            raise InputDataError(
                path,
                f"two files give the recording id {recording_id!r}.",
                "keep one file per recording in the folder.",
            )
        header = _check_header(path, channels, expected_sfreq, label_epoch_s)
        _warn_if_truncated(path)
        label_source, label_kind = _choose_hypnogram(
            path, hypnogram, hypnogram_of.get(path), csv_hypnogram_of.get(path)
        )
        if label_source is not None:
            _check_hypnogram_file(label_source, label_kind)
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
    annotations = _annotation_table(raw.annotations)
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


def stage_epoch_labels(stages: pd.DataFrame, duration_s: float, label_epoch_s: float) -> np.ndarray:
    """Per-epoch stage labels from stage annotations (``onset_s, duration_s, label``).

    Epoch ``i`` spans ``[i, i + 1) * label_epoch_s`` and takes the stage whose annotation holds
    its midpoint (normalised; unscored or movement -> ``None``). The array stops at the last
    full epoch covered by both the recording and the hypnogram, so a short hypnogram gives a
    short array (the caller decides whether that is acceptable).
    """
    texts = epoch_stage_texts(stages, duration_s, label_epoch_s)
    return np.array(
        [None if text is None else normalise_stage(text) for text in texts], dtype=object
    )


def epoch_stage_texts(stages: pd.DataFrame, duration_s: float, label_epoch_s: float) -> np.ndarray:
    """The hypnogram annotation text holding each epoch's midpoint (``None`` where none does),
    over the epochs :func:`stage_epoch_labels` covers."""
    end_s = min(duration_s, float((stages["onset_s"] + stages["duration_s"]).max()))
    n_epochs = int(np.floor(end_s / label_epoch_s + 1e-6))
    midpoints = (np.arange(n_epochs) + 0.5) * label_epoch_s
    texts = np.full(n_epochs, None, dtype=object)
    for onset, duration, name in stages[EVENT_COLUMNS].itertuples(index=False):
        inside = (midpoints >= onset) & (midpoints < onset + duration)
        texts[inside] = str(name).strip()
    return texts


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


def write_edf(recording: Recording, path: str | Path) -> Path:
    """Write a recording as EDF+ (16-bit), its hypnogram and events as annotations.

    Stages become ``Sleep stage W/1/2/3/R`` annotations (runs of equal stages merged, unscored
    epochs as ``Sleep stage ?``), events keep their labels. A last partial data record is padded
    with edge values and marked ``BAD_ACQ_SKIP``, which the reader crops again.
    """
    path = Path(path)
    samples_per_record, record_s = _data_record(recording)
    n_pad = -recording.n_samples % samples_per_record
    signals = np.pad(
        np.asarray(recording.signals, dtype=np.float64), ((0, 0), (0, n_pad)), mode="edge"
    )
    edf_signals = []
    for name, kind, data in zip(
        recording.channel_names, recording.channel_types, signals, strict=True
    ):
        if len(name) > 16:
            raise InputDataError(
                recording.source,
                f"channel name {name!r} is longer than EDF's 16 characters.",
                "rename the channel.",
            )
        edf_signals.append(
            edfio.EdfSignal(
                data,
                sampling_frequency=samples_per_record / record_s,
                label=name,
                physical_dimension=_WRITE_UNITS.get(kind, ""),
            )
        )
    annotations = [edfio.EdfAnnotation(*row) for row in _hypnogram_runs(recording)]
    if recording.events is not None:
        annotations += [
            edfio.EdfAnnotation(float(onset), float(duration), str(label))
            for onset, duration, label in recording.events[EVENT_COLUMNS].itertuples(index=False)
        ]
    if n_pad:
        annotations.append(
            edfio.EdfAnnotation(recording.duration_s, n_pad / recording.sfreq, PADDING_ANNOTATION)
        )
    edfio.Edf(edf_signals, data_record_duration=record_s, annotations=annotations).write(path)
    return path


def _data_record(recording: Recording) -> tuple[int, float]:
    """EDF needs a whole number of samples per data record: 1 s, or the shortest exact duration."""
    rate = Fraction(recording.sfreq).limit_denominator(1000)
    if abs(float(rate) - recording.sfreq) > 1e-9 * recording.sfreq:
        raise InputDataError(
            recording.source,
            f"sampling rate {recording.sfreq} Hz has no exact EDF data-record duration.",
            "resample to a rational rate (preprocessing.resample_hz).",
        )
    return rate.numerator, float(rate.denominator)


def _hypnogram_runs(recording: Recording) -> list[tuple[float, float, str]]:
    if recording.epoch_labels is None:
        return []
    if not recording.label_epoch_s:
        raise InputDataError(
            recording.source,
            "epoch_labels without label_epoch_s.",
            "set the epoch length in seconds.",
        )
    texts = []
    for label in recording.epoch_labels:
        stage = None if label is None or pd.isna(label) else normalise_stage(str(label))
        if stage is None and not (label is None or pd.isna(label)):
            raise InputDataError(
                recording.source,
                f"epoch label {label!r} is not a sleep stage; EDF hypnograms hold sleep stages only.",
                "give non-stage labels as events (onset_s, duration_s, label).",
            )
        texts.append(_UNSCORED_TEXT if stage is None else f"Sleep stage {_STAGE_TEXT[stage]}")
    return stage_runs(texts, recording.label_epoch_s)


def stage_runs(texts: list[str], epoch_s: float) -> list[tuple[float, float, str]]:
    """``(onset_s, duration_s, text)`` of each run of equal per-epoch hypnogram texts."""
    runs = []
    start = 0
    for i in range(1, len(texts) + 1):
        if i == len(texts) or texts[i] != texts[start]:
            runs.append((start * epoch_s, (i - start) * epoch_s, texts[start]))
            start = i
    return runs


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


def _recording_id(path: Path) -> str:
    return re.sub(r"[-_]PSG$", "", path.stem, flags=re.IGNORECASE)


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


def _is_hypnogram_name(path: Path) -> bool:
    return "hypnogram" in path.stem.lower()


def _pairing_key(path: Path) -> str:
    return re.sub(r"[-_ ]?(psg|hypnogram)$", "", path.stem, flags=re.IGNORECASE)


def _pair_hypnogram_files(psg_files: list[Path], hypnogram_files: list[Path]) -> dict[Path, Path]:
    """Sleep-EDF pairing: equal keys, or keys equal but for their last character."""
    pairs: dict[Path, Path] = {}
    for hypnogram_path in hypnogram_files:
        key = _pairing_key(hypnogram_path)
        exact = [p for p in psg_files if _pairing_key(p) == key]
        matches = exact or [
            p
            for p in psg_files
            if len(_pairing_key(p)) == len(key) and _pairing_key(p)[:-1] == key[:-1]
        ]
        if len(matches) != 1:
            found = (
                "no recording"
                if not matches
                else f"{len(matches)} recordings ({[p.name for p in matches]})"
            )
            raise InputDataError(
                hypnogram_path,
                f"hypnogram matches {found}.",
                "name it like its recording (SC4001E0-PSG.edf <-> SC4001EC-Hypnogram.edf) or move it out of the folder.",
            )
        if matches[0] in pairs:
            raise InputDataError(
                matches[0],
                f"two hypnograms match this recording: {pairs[matches[0]].name}, {hypnogram_path.name}.",
                "keep one hypnogram per recording.",
            )
        pairs[matches[0]] = hypnogram_path
    return pairs


def _pair_hypnogram_csvs(folder: Path, psg_files: list[Path]) -> dict[Path, Path]:
    pairs: dict[Path, Path] = {}
    claimed: set[Path] = set()
    for psg in psg_files:
        for stem in dict.fromkeys([psg.stem, _recording_id(psg)]):
            for name in (f"{stem}_hypnogram.csv", f"{stem}-Hypnogram.csv", f"{stem}.csv"):
                if (folder / name).is_file() and psg not in pairs:
                    pairs[psg] = folder / name
                    claimed.add(folder / name)
    orphans = [
        p for p in folder.glob("*.csv") if "hypnogram" in p.stem.lower() and p not in claimed
    ]
    if orphans:
        raise InputDataError(
            orphans[0],
            "hypnogram CSV matches no recording in the folder.",
            "name it <recording stem>_hypnogram.csv or move it out of the folder.",
        )
    return pairs


def _choose_hypnogram(
    psg: Path, mode: str, edf_hypnogram: Path | None, csv_hypnogram: Path | None
) -> tuple[Path | None, str]:
    if mode in ("auto", "edf") and edf_hypnogram is not None:
        return edf_hypnogram, "edf"
    if mode in ("auto", "csv") and csv_hypnogram is not None:
        return csv_hypnogram, "csv"
    if mode in ("edf", "csv"):
        raise InputDataError(
            psg,
            f"no {mode} hypnogram found for this recording.",
            f"add <recording>-Hypnogram.{mode} beside it, or set dataset.edf.hypnogram: auto.",
        )
    return None, "annotations"


def _annotation_table(annotations: mne.Annotations) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "onset_s": np.asarray(annotations.onset, dtype=float),
            "duration_s": np.asarray(annotations.duration, dtype=float),
            "label": pd.Series(annotations.description, dtype=object),
        }
    )
    return table[table["label"].str.strip() != ""].reset_index(drop=True)


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


def read_hypnogram(path: Path, kind: str) -> pd.DataFrame:
    """A hypnogram file's stage rows (``onset_s, duration_s, label``), checked for negative
    durations and overlaps; ``kind`` is ``"edf"`` or ``"csv"``."""
    if kind == "csv":
        table = _read_hypnogram_csv(path)
        check_annotation_rows(table, path, first_row=2, row_name="line")
    else:
        table = _read_hypnogram_edf(path)
        check_annotation_rows(table, path, row_name="annotation")
    return table


def _check_hypnogram_file(path: Path, kind: str) -> None:
    """Read a hypnogram when the folder is scanned: bad rows are errors, unknown stage names
    are listed in a warning (their epochs are unscored, excluded and counted); a hypnogram
    with no known stage name at all is an error."""
    table = read_hypnogram(path, kind)
    unknown = unknown_stage_names(table["label"])
    if not unknown:
        return
    if not any(normalise_stage(label) for label in table["label"]):
        raise InputDataError(
            path,
            f"none of its labels is a sleep stage ({', '.join(unknown[:8])}).",
            "write stages as W, N1, N2, N3, REM (or Sleep stage W/1/2/3/4/R, Wake/NREM/REM), "
            "and '?' for unscored epochs.",
        )
    share = table.loc[table["label"].astype(str).isin(unknown), "duration_s"].sum()
    logger.warning(
        "%s: hypnogram labels %s are not sleep stages; their %.0f s are unscored (excluded and "
        "counted as unknown_label). Rename them to W/N1/N2/N3/REM to keep those epochs.",
        path,
        unknown,
        share,
    )


def _read_hypnogram_edf(path: Path) -> pd.DataFrame:
    try:
        annotations = mne.read_annotations(path)
    except Exception as error:  # MNE raises many types for broken files
        raise InputDataError(
            path,
            f"cannot read hypnogram annotations ({error}).",
            "re-export the hypnogram as EDF+.",
        ) from error
    table = _annotation_table(annotations)
    if table.empty:
        raise InputDataError(
            path, "hypnogram file has no annotations.", "re-export the hypnogram or remove it."
        )
    return table


def _read_hypnogram_csv(path: Path) -> pd.DataFrame:
    table = read_csv_table(path, "hypnogram CSV")
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in ("onset", "duration", "label") if c not in table.columns]
    if missing:
        raise InputDataError(
            path,
            f"hypnogram CSV lacks column(s) {missing}; has {list(table.columns)}.",
            "write columns onset, duration (seconds from the recording start) and label.",
        )
    if table.empty:
        raise InputDataError(
            path, "hypnogram CSV has no rows.", "add one row per scored stage run."
        )
    try:
        onsets = pd.to_numeric(table["onset"]).astype(float)
        durations = pd.to_numeric(table["duration"]).astype(float)
    except (TypeError, ValueError) as error:
        raise InputDataError(
            path, f"non-numeric onset/duration ({error}).", "write them in seconds."
        ) from error
    return pd.DataFrame(
        {
            "onset_s": onsets,
            "duration_s": durations,
            "label": table["label"].astype(str).astype(object),
        }
    )
