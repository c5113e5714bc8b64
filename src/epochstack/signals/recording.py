"""Data contracts shared by every loader and pipeline.

Units: EEG/EOG/EMG in microvolts, accelerometer in g, heart rate in beats per minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
