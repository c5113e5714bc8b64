"""The one place for what all sleep modules share: stage codes, epoch length, channels, a night."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from epochstack.signals.recording import Recording

EPOCH_S = 30.0
STAGES = np.array(["W", "N1", "N2", "N3", "REM"])
W, N1, N2, N3, REM = range(5)
SLEEP_CHANNELS = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"]
SLEEP_CHANNEL_TYPES = ["eeg", "eeg", "eog", "emg"]
FPZ, PZ, EOG, EMG = range(4)


@dataclass
class SleepNight:
    """A simulated night: the recording and what the simulator knows beyond its scored labels.

    Attributes:
        recording: the polysomnogram with the scorer's labels (what a data set would hold).
        true_stages: the simulated stage code of every epoch (0=W .. 4=REM), before scoring.
        movement_time: epochs more than half covered by a body-movement artefact.
        unscorable: epochs whose EEG is more than half lost to an electrode dropout.
    """

    recording: Recording
    true_stages: np.ndarray
    movement_time: np.ndarray
    unscorable: np.ndarray


def night_recording(
    subject_index: int, signals: np.ndarray, sfreq: float, labels: np.ndarray
) -> Recording:
    """The Recording of a simulated night (channels, ids and 30-s labels as codes 0..4)."""
    subject_id = f"sub-{subject_index:03d}"
    return Recording(
        recording_id=f"{subject_id}_night-1",
        subject_id=subject_id,
        signals=signals,
        sfreq=float(sfreq),
        channel_names=list(SLEEP_CHANNELS),
        channel_types=list(SLEEP_CHANNEL_TYPES),
        epoch_labels=STAGES[labels],
        label_epoch_s=EPOCH_S,
        source="synthetic",
    )
