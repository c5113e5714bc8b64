"""Recordings written as EDF+ files (through edfio), which :mod:`epochstack.io.edf` reads back."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import edfio
import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.io.edf import PADDING_ANNOTATION
from epochstack.io.hypnograms import stage_runs
from epochstack.io.labels import normalise_stage
from epochstack.signals.recording import EVENT_COLUMNS, Recording

_WRITE_UNITS = {"eeg": "uV", "eog": "uV", "emg": "uV", "acc": "g", "hr": "bpm"}
_STAGE_TEXT = {"W": "W", "N1": "1", "N2": "2", "N3": "3", "REM": "R", "NREM": "NREM"}
_UNSCORED_TEXT = "Sleep stage ?"


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
