"""Simulated nights written the way PhysioNet's Sleep-EDF Expanded (``SC*`` files) stores them.

One pair of files per subject, night 1: ``SC4ss1E0-PSG.edf`` with ``EEG Fpz-Cz``, ``EEG Pz-Oz``
and ``EOG horizontal`` at the simulation rate (100 Hz) and ``EMG submental`` as Sleep-EDF's 1-Hz
RMS envelope, and ``SC4ss1EC-Hypnogram.edf`` holding Rechtschaffen & Kales annotations
(``Sleep stage W/1/2/3/4/R/?``, ``Movement time``). ``conf/sleep_edf`` runs the platform on such
a folder exactly as on the real download (docs/data_formats.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

import edfio
import numpy as np
from scipy import signal

from epochstack.errors import ParameterError
from epochstack.io.hypnograms import stage_runs
from epochstack.signals.preprocessing import zero_phase_filter
from epochstack.synthetic.sleep import simulate_sleep_night
from epochstack.synthetic.stages import EMG, EPOCH_S, FPZ, N1, N2, REM, STAGES, SleepNight, W

logger = logging.getLogger(__name__)

MAX_SUBJECTS = 100  # Sleep-EDF names hold a two-digit subject number
EMG_ENVELOPE_HZ = 1.0
# R&K stage texts of the Sleep-EDF hypnograms, by simulated stage code (N3 splits into 3 and 4).
_RK_TEXT = {W: "Sleep stage W", N1: "Sleep stage 1", N2: "Sleep stage 2", REM: "Sleep stage R"}
UNSCORED_TEXT = "Sleep stage ?"
MOVEMENT_TEXT = "Movement time"


def write_sleep_edf_folder(
    folder: str | Path,
    n_subjects: int,
    hours: float = 8.0,
    *,
    seed: int = 42,
    difficulty: str = "realistic",
    population: str | None = None,
) -> list[Path]:
    """Write ``n_subjects`` simulated nights into ``folder`` as Sleep-EDF ``SC*`` file pairs.

    Subject ``i`` (0-99) is ``SC4{i:02d}1E0-PSG.edf`` + ``SC4{i:02d}1EC-Hypnogram.edf``, the same
    night as :func:`epochstack.synthetic.generate_sleep_recording` ``(i, hours, 100 Hz,
    seed)`` gives, its chin EMG reduced to a 1-Hz RMS envelope and its labels scored in R&K
    terms: N3 as stage 3 or 4 by how much of the epoch holds slow waves above 75 µV, epochs
    mostly covered by a body movement as ``Movement time``, epochs whose EEG an electrode
    dropout mostly hides, and the last epoch of the night, as ``Sleep stage ?``. Returns the
    paths written (PSG, hypnogram, PSG, ...). Nights are made one at a time (memory: one night).
    """
    n_subjects = int(n_subjects)
    if not 1 <= n_subjects <= MAX_SUBJECTS:
        raise ParameterError(
            "n_subjects",
            f"{n_subjects} subjects do not fit Sleep-EDF's two-digit numbers.",
            f"use 1 to {MAX_SUBJECTS}.",
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for subject in range(n_subjects):
        night = simulate_sleep_night(
            subject,
            hours=hours,
            sfreq=100.0,
            seed=seed,
            difficulty=difficulty,
            population=population,
        )
        stem = f"SC4{subject:02d}1E"
        written.append(_write_psg(night, folder / f"{stem}0-PSG.edf"))
        written.append(_write_hypnogram(rk_hypnogram(night), folder / f"{stem}C-Hypnogram.edf"))
    logger.info("Wrote %d Sleep-EDF-style nights of %g h to %s.", n_subjects, hours, folder)
    return written


def emg_rms_envelope(
    emg: np.ndarray, sfreq: float, rate_hz: float = EMG_ENVELOPE_HZ, highpass_hz: float = 10.0
) -> np.ndarray:
    """Sleep-EDF's chin EMG: high-passed, then the RMS over each ``1 / rate_hz`` seconds (µV rms)."""
    sos = signal.butter(4, highpass_hz, btype="highpass", fs=sfreq, output="sos")
    high = zero_phase_filter(sos, emg, padlen=3 * (2 * len(sos) + 1))
    block = int(round(sfreq / rate_hz))
    n_blocks = len(high) // block
    return np.sqrt(np.mean(np.square(high[: n_blocks * block]).reshape(n_blocks, block), axis=1))


def rk_hypnogram(night: SleepNight) -> list[str]:
    """Per-epoch Sleep-EDF annotation texts of a simulated night's scored labels."""
    rec = night.recording
    code = {name: i for i, name in enumerate(STAGES)}
    deep = _stage_4(rec.signals[FPZ], rec.sfreq)
    texts = [
        _RK_TEXT.get(code[label]) or ("Sleep stage 4" if deep[i] else "Sleep stage 3")
        for i, label in enumerate(rec.epoch_labels)
    ]
    for i in np.flatnonzero(night.movement_time):
        texts[i] = MOVEMENT_TEXT
    for i in [*np.flatnonzero(night.unscorable), len(texts) - 1]:
        texts[i] = UNSCORED_TEXT
    return texts


def _stage_4(eeg: np.ndarray, sfreq: float, threshold_uv: float = 75.0) -> np.ndarray:
    """Per 30-s epoch: more than half of its 1-s windows hold a slow wave (< 2 Hz) above 75 µV
    peak to peak, the R&K line between stages 3 (20-50 %) and 4 (> 50 %)."""
    sos = signal.butter(4, 2.0, btype="lowpass", fs=sfreq, output="sos")
    slow = zero_phase_filter(sos, eeg, padlen=3 * (2 * len(sos) + 1))
    second = int(round(sfreq))
    per_epoch = int(round(EPOCH_S))
    n_epochs = len(slow) // (second * per_epoch)
    windows = slow[: n_epochs * per_epoch * second].reshape(n_epochs, per_epoch, second)
    return (np.ptp(windows, axis=-1) > threshold_uv).mean(axis=1) > 0.5


def _write_psg(night: SleepNight, path: Path) -> Path:
    """The PSG file: EEG and EOG at the recording's rate, the chin EMG as a 1-Hz RMS envelope,
    30-s data records as in Sleep-EDF."""
    rec = night.recording
    signals = []
    for channel, (name, data) in enumerate(zip(rec.channel_names, rec.signals, strict=True)):
        rate = EMG_ENVELOPE_HZ if channel == EMG else rec.sfreq
        values = (
            emg_rms_envelope(data, rec.sfreq)
            if channel == EMG
            else np.asarray(data, dtype=np.float64)
        )
        signals.append(
            edfio.EdfSignal(values, sampling_frequency=rate, label=name, physical_dimension="uV")
        )
    edfio.Edf(signals, data_record_duration=EPOCH_S).write(path)
    return path


def _write_hypnogram(texts: list[str], path: Path, epoch_s: float = EPOCH_S) -> Path:
    """An annotations-only EDF+ file with one annotation per run of equal epoch texts."""
    annotations = [
        edfio.EdfAnnotation(onset, duration, text)
        for onset, duration, text in stage_runs(texts, epoch_s)
    ]
    edfio.Edf([], annotations=annotations).write(path)
    return path
