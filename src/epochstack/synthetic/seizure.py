"""Synthetic wrist accelerometry and heart rate with tonic-clonic seizures and rhythmic mimics.

A day is a Markov sequence of rest, walking and random movement, each with its own gravity
orientation and motion; rare generalised tonic-clonic seizures (a tonic phase of fast,
small tremor, then clonic jerks slowing down and growing) raise the heart rate during and
after; tooth brushing and clapping are rhythmic too but carry no event label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from epochstack.signals.recording import EVENT_COLUMNS, Recording
from epochstack.synthetic import noise as sn

SEIZURE_CHANNELS = ["ACC x", "ACC y", "ACC z", "HR"]
SEIZURE_CHANNEL_TYPES = ["acc", "acc", "acc", "hr"]
REST, WALK, MOVE = range(3)
# Median minutes spent in a state before moving on, and where it goes next.
DWELL_MIN = np.array([8.0, 3.0, 2.0])
NEXT_STATE = np.array([[0.0, 0.5, 0.5], [0.6, 0.0, 0.4], [0.6, 0.4, 0.0]])
# Per activity state: heart-rate increase (bpm), RMS (g) of slow limb movement (0.3-4 Hz)
# and of orientation wobble (0.05-0.5 Hz, in units of the gravity vector).
HR_RISE_BPM = np.array([0.0, 25.0, 12.0])
MOVEMENT_G = np.array([0.0, 0.05, 0.15])
WOBBLE = np.array([0.03, 0.1, 0.5])
POST_ICTAL_S = (300.0, 900.0)


@dataclass(frozen=True)
class WristSubject:
    """Traits of one simulated wearer, drawn once per subject."""

    acc_gain: float
    sensor_noise_g: float
    fidget_g: float
    step_hz: float
    step_g: float
    seizure_gain: float
    hr_rest_bpm: float
    hr_seizure_rise_bpm: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> WristSubject:
        return cls(
            acc_gain=rng.lognormal(0, 0.2),
            sensor_noise_g=rng.uniform(0.005, 0.015),
            fidget_g=rng.uniform(0.015, 0.04),
            step_hz=rng.uniform(1.75, 2.05),
            step_g=rng.uniform(0.15, 0.35),
            seizure_gain=rng.lognormal(0, 0.25),
            hr_rest_bpm=rng.uniform(58, 80),
            hr_seizure_rise_bpm=rng.uniform(20, 50),
        )


def simulate_activity(rng: np.random.Generator, n_seconds: int) -> np.ndarray:
    """Activity state per second: a semi-Markov chain of rest, walking and movement."""
    states, lengths, total = [], [], 0
    state = REST
    while total < n_seconds:  # one step per activity bout
        length = max(10, int(rng.lognormal(np.log(DWELL_MIN[state] * 60), 0.6)))
        states.append(state)
        lengths.append(length)
        total += length
        state = int(rng.choice(3, p=NEXT_STATE[state]))
    return np.repeat(states, lengths)[:n_seconds]


def place_seizures(rng: np.random.Generator, n_seconds: int, hours: float) -> pd.DataFrame:
    """One to three seizures (at least one), 20-120 s each, one per equal slot of the recording."""
    count = 1 + rng.binomial(2, min(1.0, hours / 8))
    slot = n_seconds / count
    duration = np.minimum(rng.uniform(20, 120, count), 0.3 * slot)
    onset = np.arange(count) * slot + rng.uniform(0.1, 0.6, count) * (slot - duration)
    return pd.DataFrame({"onset_s": onset, "duration_s": duration, "label": "seizure"})[
        EVENT_COLUMNS
    ]


def _seconds_to_samples(values: np.ndarray, n: int, sfreq: float) -> np.ndarray:
    """Linear interpolation of per-second values (last axis) to every sample."""
    t = np.arange(n) / sfreq
    grid = np.arange(values.shape[-1]) + 0.5
    if values.ndim == 1:
        return np.interp(t, grid, values)
    return np.stack([np.interp(t, grid, row) for row in values])


def _random_directions(rng: np.random.Generator, count: int) -> np.ndarray:
    v = rng.standard_normal((count, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _gravity(rng, n, sfreq, activity, frame_times, coefficients) -> np.ndarray:
    """Gravity in the sensor frame (g), ``(3, n)``: a pose per bout, wobbling with activity."""
    change = np.flatnonzero(np.diff(activity)) + 1
    bout = np.zeros(len(activity), dtype=int)
    bout[change] = 1
    bout = np.cumsum(bout)
    poses = _random_directions(rng, bout[-1] + 1)
    walking = activity == WALK
    poses_s = poses[bout]
    poses_s[walking] = 0.5 * poses_s[walking] + np.array(
        [-0.9, 0.2, 0.1]
    )  # arm hanging while walking
    pose = ndimage.uniform_filter1d(poses_s.T, 3, axis=-1, mode="nearest")
    frame_state = activity[np.minimum(frame_times.astype(int), len(activity) - 1)]
    spectrum = sn.band(sn.bin_frequencies(sfreq), 0.05, 0.5)[None]
    wobble = np.stack(
        [
            sn.synthesize(
                coefficients[axis], sn.mix_amplitude(WOBBLE[frame_state][:, None], spectrum), n
            )
            for axis in range(3)
        ]
    )
    g = _seconds_to_samples(pose, n, sfreq) + wobble
    return g / np.linalg.norm(g, axis=0, keepdims=True)


def _walking(rng, n, sfreq, activity, subject: WristSubject, gravity) -> np.ndarray:
    """Step impacts at the cadence with harmonics, plus arm swing at half the cadence (g)."""
    envelope = _seconds_to_samples(
        ndimage.uniform_filter1d((activity == WALK).astype(float), 3), n, sfreq
    )
    cadence = subject.step_hz * _seconds_to_samples(
        sn.slow_fluctuation(rng, len(activity), 0.03, 60.0, 1.0), n, sfreq
    )
    phase = 2 * np.pi * np.cumsum(cadence) / sfreq
    vertical = np.sin(phase) + 0.5 * np.sin(2 * phase + 0.7) + 0.25 * np.sin(3 * phase + 1.9)
    swing = np.sin(phase / 2)
    forward = np.array([0.1, 0.9, 0.4])[:, None]
    return envelope * subject.step_g * (gravity * vertical + 0.6 * forward * swing)


def _add_seizures(rng, acc, hr_extra, sfreq, seizures, subject: WristSubject) -> None:
    """Tonic phase (6.5-8 Hz, small) then clonic jerks slowing to ~3 Hz and growing; in place."""
    n = acc.shape[1]
    for onset, duration in zip(
        seizures.onset_s, seizures.duration_s, strict=True
    ):  # one step per seizure
        start, length = int(onset * sfreq), int(duration * sfreq)
        t = np.arange(length) / sfreq
        tonic = rng.uniform(0.15, 0.3) * duration
        clonic = np.clip((t - tonic) / (duration - tonic), 0, 1)
        freq = np.where(
            t < tonic,
            rng.uniform(6.5, 8.0),
            rng.uniform(5.5, 7.0) * (rng.uniform(2.8, 3.5) / 6.2) ** clonic,
        )
        phase = 2 * np.pi * np.cumsum(freq) / sfreq
        amp = (
            np.where(t < tonic, rng.uniform(0.08, 0.2), 0.4 + rng.uniform(0.6, 1.2) * clonic)
            * subject.seizure_gain
        )
        jerks = (
            np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.2 * np.sin(3 * phase)
        )  # sharp, not sinusoidal
        ramp = np.minimum(1.0, np.minimum(t, duration - t) / 2.0)
        direction = _random_directions(rng, 1)[0][:, None] + 0.3 * rng.standard_normal((3, 1))
        end = min(n, start + length)
        acc[:, start:end] += (direction * (amp * ramp * jerks))[:, : end - start]
        # Ictal tachycardia: rises through the seizure, then decays over minutes.
        seconds = np.arange(len(hr_extra)) - onset
        rise = subject.hr_seizure_rise_bpm * (1 - sn.exp(-np.clip(seconds, 0, duration) / 8.0))
        hr_extra += np.where(
            seconds < 0,
            0.0,
            rise * sn.exp(-np.clip(seconds - duration, 0, None) / rng.uniform(120, 300)),
        )


def _add_mimics(rng, acc, hr_extra, sfreq, hours, busy) -> None:
    """Tooth brushing (4-6 Hz strokes, 1-3 min) and clapping (2-4 Hz impacts), in place."""
    n = acc.shape[1]
    n_seconds = len(hr_extra)
    kinds = ["brushing"] * (1 + rng.poisson(0.25 * hours)) + ["clapping"] * int(
        rng.poisson(0.25 * hours)
    )
    for kind in kinds:  # a few per recording
        duration = rng.uniform(60, 180) if kind == "brushing" else rng.uniform(5, 20)
        onset = rng.uniform(0, max(1.0, n_seconds - duration))
        if busy[int(onset) : int(onset + duration) + 1].any():
            continue  # would overlap a seizure: this recording has one mimic fewer
        start, length = int(onset * sfreq), int(duration * sfreq)
        t = np.arange(length) / sfreq
        if kind == "brushing":
            freq = rng.uniform(4.0, 6.0) + 0.3 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t)
            strokes = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t)
            wave = rng.uniform(0.3, 0.8) * strokes * np.sin(2 * np.pi * np.cumsum(freq) / sfreq)
        else:
            rate = rng.uniform(2.0, 4.0)
            wave = rng.uniform(1.0, 3.0) * np.maximum(0, np.sin(2 * np.pi * rate * t)) ** 8
        direction = _random_directions(rng, 1)[0][:, None]
        end = min(n, start + length)
        acc[:, start:end] += (direction * wave)[:, : end - start]
        hr_extra[int(onset) : int(onset + duration)] += 5.0


def _heart_rate(rng, n, sfreq, activity, hr_extra, subject: WristSubject) -> np.ndarray:
    """Heart rate (bpm): resting rate, lagging activity, slow drift, seizure rise, beat jitter."""
    exertion = ndimage.uniform_filter1d(
        HR_RISE_BPM[activity], 30, mode="nearest"
    )  # ~30 s to follow
    lagged = subject.hr_rest_bpm + exertion + hr_extra
    drift = 4.0 * np.log(sn.slow_fluctuation(rng, len(activity), 1.0, 300.0, 1.0))
    seconds = np.arange(len(activity))
    breathing = 2.0 * np.sin(2 * np.pi * 0.25 * seconds + rng.uniform(0, 2 * np.pi))
    hr = _seconds_to_samples(lagged + drift + breathing, n, sfreq)
    return hr + rng.normal(0, 0.3, n)


def generate_seizure_recording(
    subject_index: int, *, hours: float, sfreq: float = 25.0, seed: int = 42
) -> Recording:
    """``hours`` of wrist accelerometry (g, gravity included) and heart rate (bpm) of one subject,
    with seizure events. The data depend only on ``(seed, subject_index)`` (and length and rate).
    """
    n_seconds = int(round(hours * 3600))
    if n_seconds < 600:
        raise ValueError(
            f"dataset.synthetic.hours_per_subject={hours} is too short for seizures; use at least 0.17 h (10 min)."
        )
    if sfreq < 20:
        raise ValueError(
            f"dataset.synthetic.sfreq={sfreq} Hz cannot carry 3-8 Hz seizure rhythms; use at least 20 Hz."
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, subject_index]))
    subject = WristSubject.draw(rng)
    n = int(round(n_seconds * sfreq))

    seizures = place_seizures(rng, n_seconds, hours)
    activity = simulate_activity(rng, n_seconds)
    busy = np.zeros(n_seconds, dtype=bool)  # seizure and post-ictal seconds: the wearer lies still
    for onset, duration in zip(seizures.onset_s, seizures.duration_s, strict=True):
        still = slice(int(onset), int(onset + duration + rng.uniform(*POST_ICTAL_S)))
        activity[still] = REST
        busy[still] = True

    frame_times = sn.frame_centres_s(n, sfreq)
    n_bins = len(sn.bin_frequencies(sfreq))
    coefficients = [sn.random_coefficients(rng, len(frame_times), n_bins) for _ in range(6)]
    gravity = _gravity(rng, n, sfreq, activity, frame_times, coefficients[:3])
    frame_state = activity[np.minimum(frame_times.astype(int), n_seconds - 1)]
    spectra = np.stack(
        [sn.band(sn.bin_frequencies(sfreq), 0.3, 4.0), sn.band(sn.bin_frequencies(sfreq), 0.1, 3.0)]
    )
    rms = np.column_stack([MOVEMENT_G[frame_state], np.full(len(frame_times), subject.fidget_g)])
    rms[:, 0] *= sn.slow_fluctuation(
        rng, len(frame_times), 0.5, 20.0, frame_times[1] - frame_times[0]
    )
    amplitude = sn.mix_amplitude(rms, spectra)
    motion = np.stack([sn.synthesize(coefficients[3 + axis], amplitude, n) for axis in range(3)])
    acc = gravity + subject.acc_gain * (
        motion + _walking(rng, n, sfreq, activity, subject, gravity)
    )

    hr_extra = np.zeros(n_seconds)
    _add_seizures(rng, acc, hr_extra, sfreq, seizures, subject)
    _add_mimics(rng, acc, hr_extra, sfreq, hours, busy)
    acc += rng.normal(0, subject.sensor_noise_g, acc.shape)
    hr = _heart_rate(rng, n, sfreq, activity, hr_extra, subject)

    subject_id = f"sub-{subject_index:03d}"
    return Recording(
        recording_id=f"{subject_id}_day-1",
        subject_id=subject_id,
        signals=np.vstack([acc, hr[None]]).astype(np.float32),
        sfreq=float(sfreq),
        channel_names=list(SEIZURE_CHANNELS),
        channel_types=list(SEIZURE_CHANNEL_TYPES),
        events=seizures,
        source="synthetic",
    )
