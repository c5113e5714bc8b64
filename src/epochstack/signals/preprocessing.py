"""Validation, filtering, resampling, epoching, labelling and artefact flags for one recording."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
from scipy import signal

from epochstack.errors import InputDataError
from epochstack.signals.recording import EpochedRecording, Recording

# AASM stage names -> the 3-class Wake/NREM/REM scheme used in rodent work.
LABEL_MAPPINGS: dict[str, dict[str, str]] = {
    "three_class": {
        "W": "Wake",
        "Wake": "Wake",
        "N1": "NREM",
        "N2": "NREM",
        "N3": "NREM",
        "N4": "NREM",
        "NREM": "NREM",
        "REM": "REM",
        "R": "REM",
    },
    "aasm": {
        "W": "W",
        "Wake": "W",
        "N1": "N1",
        "N2": "N2",
        "N3": "N3",
        "N4": "N3",
        "REM": "REM",
        "R": "REM",
    },
    "none": {},
}
UNKNOWN_LABELS = {"", "?", "unknown", "unscored", "nan", "none", "movement", "artefact", "artifact"}


def map_labels(labels: np.ndarray, mapping: str, source: object = "labels") -> np.ndarray:
    """Map stage names with a named mapping; unknown labels (``?``, ``unscored``...) become
    ``None`` (excluded and counted later).

    Labels of another vocabulary (UEA classes, ``seizure``) pass through unchanged when the
    mapping knows none of them. When it knows some, the others are an error naming ``source``:
    they would otherwise become classes beside the mapped ones (``Deep`` beside ``NREM``).
    """
    if mapping not in LABEL_MAPPINGS:
        raise InputDataError(
            "dataset.label_mapping",
            f"unknown label mapping {mapping!r}.",
            f"use one of {sorted(LABEL_MAPPINGS)}.",
        )
    table = LABEL_MAPPINGS[mapping]
    texts = [
        None
        if label is None or (isinstance(label, float) and np.isnan(label))
        else str(label).strip()
        for label in labels
    ]
    texts = [None if text is None or text.lower() in UNKNOWN_LABELS else text for text in texts]
    present = {text for text in texts if text is not None}
    strangers = sorted(present - table.keys())
    if strangers and len(strangers) < len(present):
        raise InputDataError(
            source,
            f"labels {strangers[:8]} are not in dataset.label_mapping {mapping!r}, beside labels "
            f"it maps ({sorted(present & table.keys())[:8]}).",
            "rename them to stage names, write unscored epochs as '?' (for epochs no event "
            "covers: preprocessing.epoch.background_label: '?'), or set dataset.label_mapping: none.",
        )
    return np.array(
        [None if text is None else table.get(text, text) for text in texts], dtype=object
    )


def check_mapped_classes(table: pd.DataFrame, mapping: str) -> None:
    """Refuse an epoch table whose classes mix a mapping's outputs with labels it never saw.

    ``map_labels`` catches this within a recording; across recordings a recording labelled in
    another vocabulary (``Deep``/``Light``) would otherwise join another's Wake/NREM/REM.
    """
    outputs = set(LABEL_MAPPINGS.get(mapping, {}).values())
    labels = table["label"].dropna().astype(str)
    strangers = labels[~labels.isin(outputs)]
    if outputs and len(strangers) and labels.isin(outputs).any():
        recordings = sorted(table.loc[strangers.index, "recording_id"].astype(str).unique())
        raise InputDataError(
            f"recordings {recordings[:5]}",
            f"labels {sorted(strangers.unique())[:8]} are not in dataset.label_mapping {mapping!r}, "
            f"while other recordings map to {sorted(set(labels) & outputs)}.",
            "label every recording in one vocabulary (stage names, '?' for unscored), or set "
            "dataset.label_mapping: none.",
        )


def channel_indices(wanted: list[str], available: list[str], source: object) -> list[int]:
    """Positions of the ``wanted`` channels among ``available``; a missing name is an error
    naming ``source`` and listing the available names."""
    missing = [c for c in wanted if c not in available]
    if missing:
        raise InputDataError(
            source,
            f"channel(s) {missing} not found; available: {available}.",
            "fix dataset.channels.",
        )
    return [available.index(c) for c in wanted]


def pick_channels(recording: Recording, channels: list[str] | None) -> Recording:
    """Keep the named channels, in the given order; a missing name is an error naming the file."""
    if not channels:
        return recording
    idx = channel_indices(channels, recording.channel_names, recording.source)
    recording.signals = recording.signals[idx]
    recording.channel_names = [recording.channel_names[i] for i in idx]
    recording.channel_types = [recording.channel_types[i] for i in idx]
    return recording


def validate_recording(recording: Recording) -> None:
    """Reject empty signals, NaN runs and hypnograms that do not cover the recording."""
    src = recording.source
    if recording.signals.ndim != 2 or recording.signals.shape[1] == 0:
        raise InputDataError(
            src,
            f"no samples (signal shape {recording.signals.shape}).",
            "check the file is complete.",
        )
    if len(recording.channel_names) != recording.signals.shape[0]:
        raise InputDataError(
            src,
            f"{len(recording.channel_names)} channel names for {recording.signals.shape[0]} signals.",
        )
    if not np.isfinite(recording.sfreq) or recording.sfreq <= 0:
        raise InputDataError(src, f"invalid sampling rate {recording.sfreq}.", "set dataset.sfreq.")
    bad = ~np.isfinite(recording.signals)
    if bad.any():
        ch, first = np.argwhere(bad)[0]
        run_end = first + np.argmax(np.append(~bad[ch, first:], True))
        raise InputDataError(
            src,
            f"channel {recording.channel_names[ch]!r} has NaN/inf samples from {first / recording.sfreq:.2f} s "
            f"({(run_end - first) / recording.sfreq:.2f} s long; {int(bad.sum())} bad samples in all).",
            "interpolate or cut the gap before ingest, or drop the channel with dataset.channels.",
        )
    if recording.epoch_labels is not None:
        covered = len(recording.epoch_labels) * float(recording.label_epoch_s)
        if covered < recording.duration_s - float(recording.label_epoch_s):
            raise InputDataError(
                src,
                f"labels cover {covered:.0f} s of a {recording.duration_s:.0f} s recording "
                f"({len(recording.epoch_labels)} labels of {recording.label_epoch_s} s).",
                "supply the complete hypnogram, or mark unscored epochs as '?' so they are excluded.",
            )


def resample(recording: Recording, target_hz: float | None) -> Recording:
    """Polyphase resampling (scipy.signal.resample_poly) to ``target_hz``."""
    if not target_hz or np.isclose(target_hz, recording.sfreq):
        return recording
    ratio = Fraction(float(target_hz) / recording.sfreq).limit_denominator(1000)
    recording.signals = signal.resample_poly(
        recording.signals, ratio.numerator, ratio.denominator, axis=-1
    ).astype(np.float32)
    recording.sfreq = recording.sfreq * ratio.numerator / ratio.denominator
    return recording


def _butter_sos(sfreq: float, l_freq: float | None, h_freq: float | None) -> np.ndarray | None:
    nyquist = sfreq / 2
    h_freq = h_freq if h_freq and h_freq < nyquist * 0.99 else None
    l_freq = l_freq if l_freq and l_freq > 0 else None
    if l_freq and h_freq:
        return signal.butter(4, [l_freq, h_freq], btype="bandpass", fs=sfreq, output="sos")
    if l_freq:
        return signal.butter(4, l_freq, btype="highpass", fs=sfreq, output="sos")
    if h_freq:
        return signal.butter(4, h_freq, btype="lowpass", fs=sfreq, output="sos")
    return None


def _sos_step_state(sos: np.ndarray) -> np.ndarray:
    """:func:`scipy.signal.sosfilt_zi` in closed form: each section's state after a unit step."""
    zi = np.empty((len(sos), 2))
    scale = 1.0
    for i, (b0, b1, b2, a0, a1, a2) in enumerate(np.asarray(sos, dtype=np.float64)):
        b0, b1, b2, a1, a2 = b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0
        drive0, drive1 = b1 - a1 * b0, b2 - a2 * b0
        gain = 1.0 + a1 + a2
        zi[i] = scale * np.array(
            [(drive0 + drive1) / gain, ((1.0 + a1) * drive1 - a2 * drive0) / gain]
        )
        scale *= (b0 + b1 + b2) / gain
    return zi


def zero_phase_filter(sos: np.ndarray, x: np.ndarray, padlen: int) -> np.ndarray:
    """``scipy.signal.sosfiltfilt(sos, x, axis=-1, padlen=padlen)``, rounded alike on every CPU.

    Written by hand around :func:`scipy.signal.sosfilt` because sosfiltfilt's initial state comes
    from a LAPACK solve, and LAPACK's kernels (chosen per CPU) round differently: the same
    recording gave other filtered samples on an AVX2 machine than on an AVX-512 one. The 2x2
    solve of each section in closed form makes the filtered data bit-identical across machines.
    """
    x = np.asarray(x, dtype=np.float64)
    if padlen > 0:
        left = 2 * x[..., :1] - x[..., padlen:0:-1]
        right = 2 * x[..., -1:] - x[..., -2 : -(padlen + 2) : -1]
        x = np.concatenate([left, x, right], axis=-1)
    zi = _sos_step_state(sos).reshape(len(sos), *[1] * (x.ndim - 1), 2)
    y, _ = signal.sosfilt(sos, x, axis=-1, zi=zi * x[..., :1])
    y, _ = signal.sosfilt(sos, y[..., ::-1], axis=-1, zi=zi * y[..., -1:])
    y = y[..., ::-1]
    return np.ascontiguousarray(y[..., padlen:-padlen] if padlen > 0 else y)


def filter_signals(
    signals: np.ndarray,
    sfreq: float,
    channel_types: list[str],
    filters: dict[str, dict],
    notch_hz: float | None = None,
) -> np.ndarray:
    """Zero-phase Butterworth band-/high-/low-pass per channel type, then an optional notch.

    Works on the last axis, so it filters continuous ``(n_channels, n_samples)`` signals and
    already-epoched ``(n_epochs, n_channels, n_times)`` arrays alike.
    """
    out = np.array(signals, dtype=np.float64, copy=True)
    types = np.asarray(channel_types)
    for ch_type in dict.fromkeys(channel_types):
        spec = filters.get(ch_type) or {}
        sos = _butter_sos(sfreq, spec.get("l_freq"), spec.get("h_freq"))
        if sos is None:
            continue
        idx = np.flatnonzero(types == ch_type)
        # Pad by three periods of the lowest cut-off so edge transients stay out of the data.
        lowest = min(f for f in (spec.get("l_freq"), spec.get("h_freq")) if f)
        padlen = min(out.shape[-1] - 1, max(3 * (2 * len(sos) + 1), int(3 * sfreq / lowest)))
        out[..., idx, :] = zero_phase_filter(sos, out[..., idx, :], padlen)
    if notch_hz and notch_hz < sfreq / 2:
        b, a = signal.iirnotch(notch_hz, Q=30.0, fs=sfreq)  # one biquad: its own section
        out = zero_phase_filter(np.concatenate([b, a])[None], out, min(9, out.shape[-1] - 1))
    return out.astype(np.float32)


def epoch_labels_from_hypnogram(
    n_epochs: int, t_start_s: np.ndarray, window_s: float, labels: np.ndarray, label_epoch_s: float
) -> np.ndarray:
    """Label of each epoch: the hypnogram label at the epoch's centre."""
    centre = t_start_s + window_s / 2
    idx = np.floor(centre / label_epoch_s).astype(int)
    out = np.full(n_epochs, None, dtype=object)
    inside = idx < len(labels)
    out[inside] = np.asarray(labels, dtype=object)[idx[inside]]
    return out


def epoch_labels_from_events(
    t_start_s: np.ndarray,
    window_s: float,
    events: pd.DataFrame,
    min_overlap: float,
    background: str,
) -> np.ndarray:
    """Label of each epoch: an event's label when it covers ``min_overlap`` of the epoch."""
    out = np.full(len(t_start_s), background, dtype=object)
    best = np.zeros(len(t_start_s))
    t_end = t_start_s + window_s
    for onset, duration, label in events[["onset_s", "duration_s", "label"]].itertuples(
        index=False
    ):
        overlap = (
            np.clip(np.minimum(t_end, onset + duration) - np.maximum(t_start_s, onset), 0, None)
            / window_s
        )
        take = (overlap >= min_overlap) & (overlap > best)
        out[take] = label
        best = np.maximum(best, np.where(take, overlap, best))
    return out


def epoch_recording(
    recording: Recording,
    window_s: float,
    step_s: float,
    min_event_overlap: float = 0.5,
    background_label: str = "background",
) -> EpochedRecording:
    """Cut a continuous recording into windows of ``window_s`` every ``step_s`` seconds."""
    n_win, n_step = int(round(window_s * recording.sfreq)), int(round(step_s * recording.sfreq))
    if n_win < 2 or n_step < 1:
        raise InputDataError(
            "preprocessing.epoch",
            f"window {window_s} s / step {step_s} s is too short at {recording.sfreq} Hz.",
            "set preprocessing.epoch.window_s to at least two samples and step_s to at least one.",
        )
    if recording.n_samples < n_win:
        raise InputDataError(
            recording.source,
            f"recording is {recording.duration_s:.1f} s long, shorter than one {window_s} s epoch.",
            "lower preprocessing.epoch.window_s or drop this file.",
        )
    windows = np.lib.stride_tricks.sliding_window_view(recording.signals, n_win, axis=1)[
        :, ::n_step
    ]
    epochs = np.ascontiguousarray(windows.transpose(1, 0, 2), dtype=np.float32)
    index = np.arange(epochs.shape[0])
    t_start = index * n_step / recording.sfreq
    if recording.epoch_labels is not None:
        labels = epoch_labels_from_hypnogram(
            len(index), t_start, window_s, recording.epoch_labels, recording.label_epoch_s
        )
    elif recording.events is not None:
        labels = epoch_labels_from_events(
            t_start, window_s, recording.events, min_event_overlap, background_label
        )
    else:
        labels = None
    return EpochedRecording(
        recording_id=recording.recording_id,
        subject_id=recording.subject_id,
        epochs=epochs,
        sfreq=recording.sfreq,
        channel_names=list(recording.channel_names),
        channel_types=list(recording.channel_types),
        labels=labels,
        epoch_index=index,
        t_start_s=t_start,
        source=recording.source,
        source_split=recording.source_split,
    )


def artefact_flags(
    epochs: np.ndarray, channel_types: list[str], config: dict
) -> dict[str, np.ndarray]:
    """Per-epoch flags: a flat channel, clipping (samples stuck at the extremes), extreme amplitude."""
    std = epochs.std(axis=-1)
    flat = (std < float(config.get("flat_std", 0.0))).any(axis=1)
    high, low = epochs.max(axis=-1, keepdims=True), epochs.min(axis=-1, keepdims=True)
    span = np.maximum(high - low, 1e-12)
    at_edge = (np.abs(epochs - high) <= 1e-4 * span) | (np.abs(epochs - low) <= 1e-4 * span)
    clipped = ((at_edge.mean(axis=-1) >= float(config.get("clip_fraction", 1.0))) & (std > 0)).any(
        axis=1
    )
    limits = config.get("extreme_abs") or {}
    limit = np.array([float(limits.get(t, np.inf)) for t in channel_types])
    extreme = (np.abs(epochs).max(axis=-1) > limit).any(axis=1)
    return {"flag_flat": flat, "flag_clipped": clipped, "flag_extreme": extreme}
