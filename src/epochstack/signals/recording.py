"""Data contracts shared by every loader and pipeline.

Units: EEG/EOG/EMG in microvolts, accelerometer in g, heart rate in beats per minute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

EVENT_COLUMNS = ["onset_s", "duration_s", "label"]


@dataclass
class Recording:
    """A continuous multichannel recording.

    Attributes:
        signals: float32 array ``(n_channels, n_samples)``.
        epoch_labels: optional per-epoch labels (a hypnogram), one every ``label_epoch_s``
            seconds from the start of the recording.
        events: optional table of annotated events with columns ``onset_s, duration_s, label``.
        source: where the data came from (a file path or ``synthetic``), used in error messages.
    """

    recording_id: str
    subject_id: str
    signals: np.ndarray
    sfreq: float
    channel_names: list[str]
    channel_types: list[str]
    epoch_labels: np.ndarray | None = None
    label_epoch_s: float | None = None
    events: pd.DataFrame | None = None
    source: str = "synthetic"
    source_split: str | None = None

    @property
    def n_samples(self) -> int:
        return int(self.signals.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sfreq


@dataclass
class EpochedRecording:
    """Epochs of one recording, in time order.

    Attributes:
        epochs: float32 array ``(n_epochs, n_channels, n_times)``.
        labels: one label per epoch (``None`` entries where unknown), or ``None`` if unlabelled.
        epoch_index: position of each epoch in the recording (0, 1, 2, ... before exclusions).
        t_start_s: start time of each epoch in seconds from the recording start.
        source_split: ``"train"``/``"test"`` when the source fixes the split (UEA ``.ts``).
    """

    recording_id: str
    subject_id: str
    epochs: np.ndarray
    sfreq: float
    channel_names: list[str]
    channel_types: list[str]
    labels: np.ndarray | None = None
    epoch_index: np.ndarray | None = None
    t_start_s: np.ndarray | None = None
    source: str = "synthetic"
    source_split: str | None = None
    flags: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        n = self.epochs.shape[0]
        if self.epoch_index is None:
            self.epoch_index = np.arange(n)
        if self.t_start_s is None:
            self.t_start_s = self.epoch_index * (self.epochs.shape[2] / self.sfreq)

    @property
    def n_epochs(self) -> int:
        return int(self.epochs.shape[0])


@dataclass(frozen=True)
class Header:
    """What a recording holds, known before its signals are read (checked before work starts).

    ``n_samples`` counts the samples of the whole recording, or of one epoch when ``epoched``
    (UEA cases, HDF5 rows). ``rate_parameter`` names the parameter that set ``sfreq`` (e.g.
    ``dataset.sfreq``); ``None`` when the file itself gives the rate.
    """

    source: str
    sfreq: float
    n_channels: int
    n_samples: int
    channel_types: tuple[str, ...]
    epoched: bool = False
    n_epochs: int = 1
    rate_parameter: str | None = None

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sfreq


def header_of(recording: Recording | EpochedRecording, rate_parameter: str | None = None) -> Header:
    """The header of a recording already in memory."""
    if isinstance(recording, EpochedRecording):
        n_epochs, n_channels, n_samples = recording.epochs.shape
        epoched = True
    else:
        (n_channels, n_samples), n_epochs, epoched = recording.signals.shape, 1, False
    return Header(
        str(recording.source),
        float(recording.sfreq),
        int(n_channels),
        int(n_samples),
        tuple(recording.channel_types),
        epoched,
        int(n_epochs),
        rate_parameter,
    )


@dataclass(frozen=True)
class LazyRecording:
    """A zero-argument loader (picklable) with the header of the recording it loads."""

    load: Callable[[], Recording]
    header: Header

    def __call__(self) -> Recording:
        return self.load()


def known_header(source: Callable[[], object], rate_parameter: str | None = None) -> Header | None:
    """The header of a :class:`LazyRecording`, or of a recording already in memory bound as the
    only argument of a ``functools.partial``; ``None`` when the source cannot tell."""
    if isinstance(source, LazyRecording):
        return source.header
    if isinstance(source, partial) and len(source.args) == 1 and not source.keywords:
        if isinstance(source.args[0], Recording | EpochedRecording):
            return header_of(source.args[0], rate_parameter)
    return None
