"""Transients both sleep generators add: spindles, K-complexes, eye movements and blinks, REM
twitches, body movements, mains, electrode dropouts. Each generator passes its own event rates
(per minute per stage) and subject (``sleep.SleepSubject`` or ``sleep_realistic.NightSubject``)."""

from __future__ import annotations

import numpy as np

from epochstack.synthetic import noise as sn
from epochstack.synthetic.stages import EPOCH_S, REM


def frame_events(rng, rate_per_min: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    """Poisson event times (s) with a rate per synthesis frame (each frame spans one hop)."""
    step_s = frame_times[1] - frame_times[0]
    return np.clip(sn.stage_events(rng, rate_per_min, step_s) - step_s / 2, 0, None)


def spindles(rng, n, sfreq, times, subject) -> np.ndarray:
    """11-16 Hz bursts of 0.5-2 s at the subject's spindle frequency."""
    track = np.zeros(n, dtype=np.float32)
    k = len(times)
    freq = (subject.spindle_hz + rng.normal(0, 0.4, k))[:, None]
    amp = (rng.uniform(15, 35, k) * subject.eeg_gain)[:, None]
    phase = rng.uniform(0, 2 * np.pi, k)[:, None]
    waves = sn.bursts(
        rng.uniform(0.5, 2.0, k), sfreq, lambda t: amp * np.sin(2 * np.pi * freq * t + phase)
    )
    sn.add_waveforms(track, times, waves, sfreq)
    return track


def k_complexes(rng, n, sfreq, times, subject) -> np.ndarray:
    """A sharp negative wave then a slower positive one (EEG polarity), 80-160 µV."""
    track = np.zeros(n, dtype=np.float32)
    t = np.arange(int(1.2 * sfreq)) / sfreq
    wave = -0.65 * sn.exp(-0.5 * ((t - 0.3) / 0.07) ** 2) + 0.45 * sn.exp(
        -0.5 * ((t - 0.7) / 0.15) ** 2
    )
    amp = rng.uniform(80, 160, len(times)) * subject.eeg_gain
    sn.add_waveforms(track, times, amp[:, None] * wave, sfreq)
    return track


def eye_movements(
    rng, n, sfreq, true_stages, frames, subject, rates: dict, active_gain: dict
) -> tuple[np.ndarray, np.ndarray]:
    """Eye tracks ``(movements, blinks)``: wake saccades and clustered rapid eye movements in REM
    (horizontal steps that drift back), and blinks (a brief bump, largest at Fpz)."""
    times, weights, active = frames
    saccades = frame_events(
        rng,
        sn.weighted_sum(weights, rates["saccade"]) * np.where(active, active_gain["saccade"], 1.0),
        times,
    )
    blinks = frame_events(
        rng,
        sn.weighted_sum(weights, rates["blink"]) * np.where(active, active_gain["blink"], 1.0),
        times,
    )
    # REM: phasic epochs carry bursts of rapid eye movements around a random centre.
    rem_epochs = np.flatnonzero(true_stages == REM)
    phasic = rng.random(len(rem_epochs)) < 0.4
    counts = rng.poisson(np.where(phasic, 12.0, 0.5))
    centres = np.repeat(rem_epochs * EPOCH_S + rng.uniform(5, 25, len(rem_epochs)), counts)
    rems = np.clip(centres + rng.normal(0, 3.0, len(centres)), 0, n / sfreq)

    amp = subject.eye_movement_uv
    steps = sn.impulse_train(n, saccades, rng.normal(0, 0.6 * amp, len(saccades)), sfreq)
    steps += sn.impulse_train(
        n, rems, rng.choice([-1, 1], len(rems)) * rng.uniform(0.5, 1.5, len(rems)) * amp, sfreq
    )
    movements = sn.rise_decay(steps, sfreq, rise_s=0.04, decay_s=0.8)
    return movements, sn.alpha_kernel(
        sn.impulse_train(n, blinks, rng.uniform(0.2, 0.5, len(blinks)) * amp, sfreq), sfreq, 0.08
    )


def twitches(rng, n, sfreq, frames, subject, rates: np.ndarray) -> np.ndarray:
    """Phasic muscle twitches on the chin EMG during REM (``rates`` per minute per stage): 0.1-0.4 s bursts."""
    track = np.zeros(n, dtype=np.float32)
    times = frame_events(rng, sn.weighted_sum(frames[1], rates), frames[0])
    amp = (rng.uniform(8, 25, len(times)) * subject.emg_gain)[:, None]
    waves = sn.bursts(
        rng.uniform(0.1, 0.4, len(times)), sfreq, lambda t: amp * rng.standard_normal(t.shape)
    )
    sn.add_waveforms(track, times, waves, sfreq)
    return track


def add_movement_artefacts(
    rng, signals, sfreq, frames, rates: np.ndarray, duration_s: tuple[float, float]
) -> list[tuple[int, int]]:
    """Broadband bursts with a baseline swing on every channel (mostly in wake), in place.

    Returns the ``(start, length)`` of each burst in samples.
    """
    n = signals.shape[1]
    spans = []
    for onset in frame_events(rng, sn.weighted_sum(frames[1], rates), frames[0]):  # a few per hour
        length = int(rng.uniform(*duration_s) * sfreq)
        start = int(onset * sfreq)
        if start + length > n:
            continue
        spans.append((start, length))
        shape = np.hanning(length).astype(np.float32)
        swing = np.sin(np.pi * np.arange(length) / length).astype(np.float32)
        for channel, (burst_uv, swing_uv) in enumerate(((60, 120), (40, 80), (60, 150), (80, 0))):
            noise = rng.standard_normal(length, dtype=np.float32) * np.float32(
                rng.uniform(0.5, 2.0) * burst_uv
            )
            signals[channel, start : start + length] += (
                shape * noise + np.float32(rng.normal(0, swing_uv)) * swing
            )
    return spans


def add_mains(rng, signals, sfreq, amplitudes_uv) -> None:
    """50 Hz mains at ``amplitudes_uv[channel]`` with a random phase per channel, in place."""
    line = sn.mains(signals.shape[1], sfreq)
    if line is None:
        return
    for channel, amp in enumerate(amplitudes_uv):
        phase = rng.uniform(0, 2 * np.pi)
        signals[channel] += (
            np.float32(amp * np.cos(phase)) * line[0] - np.float32(amp * np.sin(phase)) * line[1]
        )


def add_dropouts(rng, signals, sfreq, hours) -> list[tuple[int, int, int]]:
    """An electrode off for 1-2.5 min a few times a night: the channel reads ~0, in place.

    Returns the ``(channel, start, length)`` of each dropout in samples.
    """
    n = signals.shape[1]
    spans = []
    for _ in range(rng.poisson(1.5 * hours / 4)):
        length = min(n, int(rng.uniform(60, 150) * sfreq))
        start = int(rng.integers(0, n - length + 1))
        channel = int(rng.integers(0, signals.shape[0]))
        signals[channel, start : start + length] = rng.normal(0, 1e-3, length)
        spans.append((channel, start, length))
    return spans
