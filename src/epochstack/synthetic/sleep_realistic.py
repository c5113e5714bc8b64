"""Realistic synthetic nights (``difficulty="realistic"``): as hard to stage as real recordings.

Whole nights (lights out to lights on) from a population's sleep architecture, then signals
whose spectra are smooth like EEG's: an aperiodic 1/f^beta background whose exponent follows
the stage (steeper in N3), broad periodic peaks (slow oscillation and delta, theta, alpha, sigma,
beta) at subject-specific frequencies and widths, and a chin EMG with a rising muscle spectrum.
The EEG waxes and wanes within seconds (slow-wave trains, alpha bursts); transients with their real
morphology ride on top: K-complexes, vertex waves, spindles, sawtooth waves, arousals (alpha
and an EMG burst), blinks and saccades in eyes-open wake, rapid eye movements, twitches, body
movements, cardiac (ECG) leakage, mains and electrode dropouts. Subjects differ in every gain,
frequency and rate, so absolute band powers do not transfer between subjects as well as they do
within one. See docs/synthetic_data.md for the numbers and the calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from epochstack.synthetic import hypnogram as hy
from epochstack.synthetic import noise as sn
from epochstack.synthetic import stages as st
from epochstack.synthetic import transients as tr
from epochstack.synthetic.stages import EMG, EOG, EPOCH_S, FPZ, N2, PZ, REM, W

# Continuous components per stage, W N1 N2 N3 REM: RMS (µV) for a reference subject at the
# channel where the component is strongest. Wake values are for relaxed (eyes-closed) wake.
BACKGROUND_RMS = np.array([10.0, 11.0, 13.0, 16.0, 10.0])  # aperiodic 1/f^beta
BACKGROUND_EXPONENT = np.array([1.3, 1.6, 2.0, 2.4, 1.9])  # beta: steeper in deep sleep
STAGE_RMS = {
    # slow oscillation and delta: flat to ~1.5 Hz, then falling
    "delta": [4.0, 8.0, 16.0, 38.0, 9.0],
    "theta": [4.0, 8.0, 7.0, 5.0, 9.0],  # subject peak 5-7 Hz
    "alpha": [12.0, 5.0, 2.0, 1.5, 4.0],  # subject peak 8.5-11.5 Hz (Pz-Oz)
    "sigma": [1.0, 1.5, 3.0, 2.5, 1.0],  # spindle-frequency background
    "beta": [5.0, 3.0, 2.0, 1.5, 3.5],  # broad peak 18-24 Hz
    "slow_eye": [6.0, 10.0, 4.0, 0.0, 3.0],  # rolling eye movements, ~0.3 Hz
    "emg": [15.0, 11.0, 9.0, 8.0, 4.0],  # chin tone (REM atonia)
}
# Components, in the column order of the RMS and spectra arrays: one aperiodic background per
# stage (mixed by the stage weights), then STAGE_RMS, then amplifier noise.
# Share of each component on Fpz-Cz, Pz-Oz, EOG and EMG; the backgrounds share one row entry.
_GAIN = {  # background delta theta alpha sigma beta slow_eye emg amplifier
    FPZ: (1.0, 1.0, 0.8, 0.45, 0.8, 1.0, 0.3, 0.08, 1.0),
    PZ: (0.9, 0.6, 0.7, 1.0, 0.6, 0.7, 0.0, 0.03, 1.0),
    EOG: (0.3, 0.45, 0.15, 0.05, 0.05, 0.3, 1.0, 0.15, 1.0),
    EMG: (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0),
}
CHANNEL_GAIN = np.array(
    [[g[0]] * len(st.STAGES) + list(g[1:]) for g in (_GAIN[c] for c in range(4))]
)
COHERENCE_WITH_FPZ = (1.0, 0.3, 0.5, 0.0)
# Depth (log-sd) of the within-seconds amplitude modulation of the continuous EEG per stage.
BURST_DEPTH = np.array([0.3, 0.25, 0.4, 0.4, 0.25])
BURST_TIMESCALE_S = 1.0
# Events per minute per stage, W N1 N2 N3 REM (K-complexes in N2 and spindles scale per subject).
EVENT_RATES = {
    "spindle": np.array([0.0, 0.5, 4.0, 1.5, 0.0]),
    "k_complex": np.array([0.0, 0.15, 1.0, 0.5, 0.0]),
    "vertex": np.array([0.0, 3.0, 0.6, 0.0, 0.0]),
    "sawtooth": np.array([0.0, 0.0, 0.0, 0.0, 2.0]),
    "saccade": np.array([20.0, 2.0, 0.0, 0.0, 0.0]),
    "blink": np.array([10.0, 3.0, 0.0, 0.0, 0.0]),
    "movement": np.array([0.4, 0.15, 0.03, 0.01, 0.05]),
    "twitch": np.array([0.0, 0.0, 0.0, 0.0, 8.0]),
}
# Share of the EEG transients on Fpz-Cz, Pz-Oz and the EOG (vertex waves: Cz is Fpz-Cz's reference).
EVENT_GAIN = {
    "spindle": (1.0, 0.55, 0.1),
    "k_complex": (1.0, 0.5, 0.4),
    "vertex": (-1.0, 0.4, 0.2),
    "sawtooth": (1.0, 0.6, 0.2),
    "arousal": (0.5, 1.0, 0.1),
    "eye": (0.2, 0.0, 1.0),
    "blink": (1.0, 0.1, 0.35),
}
ACTIVE_WAKE = {"alpha": 0.3, "beta": 1.6, "emg": 1.8, "saccade": 2.5, "blink": 2.5}
HEART_RATE_BY_STAGE = np.array([1.08, 1.0, 0.95, 0.92, 1.03])  # relative to the subject's rate


@dataclass(frozen=True)
class NightSubject:
    """Traits of one simulated sleeper, drawn once per subject."""

    eeg_gain: float
    slow_wave_gain: float
    alpha_gain: float
    alpha_hz: float
    alpha_width_hz: float
    theta_hz: float
    delta_knee_hz: float
    delta_slope: float
    spindle_hz: float
    spindle_density: float
    k_complex_per_min: float
    beta_hz: float
    exponent_shift: float
    knee_hz: float
    emg_gain: float
    emg_corner_hz: float
    rem_atonia: float
    amplifier_uv: float
    eye_movement_uv: float
    blink_uv: float
    heart_rate_bpm: float
    ecg_uv: tuple[float, float, float, float]
    arousals_per_h: float
    cycle_min: float
    sleep_need_min: float
    label_noise: float
    ramp_s: float
    rem_ramp_s: float
    line_noise_uv: tuple[float, float, float, float]

    @classmethod
    def draw(cls, rng: np.random.Generator, population: hy.Population) -> NightSubject:
        return cls(
            eeg_gain=_spread(rng, 0.2),
            slow_wave_gain=population.slow_wave_gain * _spread(rng, 0.2),
            alpha_gain=_spread(rng, 0.4),
            alpha_hz=rng.uniform(8.5, 11.5) + population.alpha_shift_hz,
            alpha_width_hz=rng.uniform(0.6, 1.2),
            theta_hz=rng.uniform(5.0, 7.0),
            delta_knee_hz=rng.uniform(1.0, 2.0),
            delta_slope=rng.uniform(3.0, 4.0),
            spindle_hz=rng.uniform(12.0, 14.5),
            spindle_density=population.spindle_density * rng.uniform(0.6, 1.4),
            k_complex_per_min=rng.uniform(1.0, 3.0),
            beta_hz=rng.uniform(18.0, 24.0),
            exponent_shift=rng.normal(0, 0.15),
            knee_hz=rng.uniform(0.5, 1.0),
            emg_gain=_spread(rng, 0.3),
            emg_corner_hz=rng.uniform(15.0, 30.0),
            rem_atonia=_spread(rng, 0.2),
            amplifier_uv=rng.uniform(0.5, 2.5),
            eye_movement_uv=rng.uniform(40.0, 120.0),
            blink_uv=rng.uniform(80.0, 200.0),
            heart_rate_bpm=rng.uniform(52.0, 75.0),
            ecg_uv=tuple(
                np.array([3.0, 2.0, 4.0, 6.0]) * _spread(rng, 0.5, 4) * rng.choice([-1, 1], 4)
            ),
            arousals_per_h=rng.uniform(*population.arousals_per_h),
            cycle_min=rng.uniform(85.0, 110.0),
            sleep_need_min=rng.uniform(7.0, 8.5) * 60,
            label_noise=rng.uniform(0.3, 0.5),
            ramp_s=rng.uniform(4.0, 10.0),
            rem_ramp_s=rng.uniform(60.0, 150.0),
            line_noise_uv=tuple(rng.lognormal(np.log(2.0), 0.9, size=4)),
        )


def _spread(rng: np.random.Generator, sd: float, size: int | None = None) -> np.ndarray | float:
    """Log-normal factor of median 1 and log-sd ``sd``, cut at 2 sd (healthy volunteers)."""
    return sn.exp(sd * np.clip(rng.standard_normal(size), -2.0, 2.0))


def _component_rms(rng, subject: NightSubject, frames) -> np.ndarray:
    """RMS (µV) of every continuous component in every synthesis frame ``(n_frames, n_components)``."""
    times, weights, active = frames
    background = np.sqrt(weights) * (BACKGROUND_RMS * subject.eeg_gain)  # powers mix linearly
    rhythms = sn.weighted_sum(weights, np.array(list(STAGE_RMS.values())).T)
    for name, factor in ACTIVE_WAKE.items():
        if name in STAGE_RMS:
            rhythms[:, list(STAGE_RMS).index(name)] *= 1 + (factor - 1) * weights[:, W] * active
    rhythms[:, list(STAGE_RMS).index("emg")] *= 1 + (subject.rem_atonia - 1) * weights[:, REM]
    gain = {
        "delta": subject.eeg_gain * subject.slow_wave_gain,
        "theta": subject.eeg_gain,
        "alpha": subject.eeg_gain * subject.alpha_gain,
        "sigma": subject.eeg_gain * subject.spindle_density,
        "beta": subject.eeg_gain,
        "slow_eye": subject.eye_movement_uv / 80.0,
        "emg": subject.emg_gain,
    }
    rhythms *= np.array([gain[c] for c in STAGE_RMS])
    step_s = times[1] - times[0]
    drift_sigma = {"delta": 0.35, "emg": 0.25, "alpha": 0.4}
    for i, name in enumerate(STAGE_RMS):
        rhythms[:, i] *= sn.slow_fluctuation(
            rng, len(times), drift_sigma.get(name, 0.25), 30.0, step_s
        )
    background *= sn.slow_fluctuation(rng, len(times), 0.2, 30.0, step_s)[:, None]
    return np.column_stack([background, rhythms, np.full(len(times), subject.amplifier_uv)])


def _component_spectra(sfreq: float, subject: NightSubject) -> np.ndarray:
    """Unit-power spectrum of every component over the synthesis bins ``(n_components, n_bins)``.

    Smooth shapes only (a knee-and-exponent aperiodic law, Gaussian peaks): no edge anywhere,
    so no band of any feature set coincides with a component's boundary.
    """
    f = sn.bin_frequencies(sfreq)
    backgrounds = [
        sn.unit_power(np.where(f > 0, 1.0 / (subject.knee_hz**beta + f**beta), 0.0))
        for beta in BACKGROUND_EXPONENT + subject.exponent_shift
    ]
    # slow waves: flat from ~0.3 Hz to the knee, then a steep power law (no cliff in log-log)
    delta = sn.unit_power(
        f**2 / (f**2 + 0.3**2) / (1 + (f / subject.delta_knee_hz) ** subject.delta_slope)
    )
    emg = sn.unit_power(f**2 / (f**2 + subject.emg_corner_hz**2))
    return np.stack(
        [
            *backgrounds,
            delta,
            sn.peak(f, subject.theta_hz, 1.5),
            sn.peak(f, subject.alpha_hz, subject.alpha_width_hz),
            sn.peak(f, subject.spindle_hz, 1.5),
            sn.peak(f, subject.beta_hz, 5.0),
            sn.peak(f, 0.3, 0.15),
            emg,
            sn.unit_power(np.where(f > 0, 1.0, 0.0)),
        ]
    )


def _burst_envelope(rng, n: int, sfreq: float, frames) -> np.ndarray:
    """Log-normal amplitude modulation (mean power 1) over ~1 s, deeper in NREM: waxing and
    waning rhythms, trains of slow waves. Makes within-epoch EEG leptokurtic as real EEG is
    (a stationary Gaussian process has excess kurtosis 0)."""
    times, weights, _ = frames
    rate = 10.0  # knots per second, smoothed to the time scale, then interpolated
    knot_times = np.arange(int(n / sfreq * rate) + 2) / rate
    z = sn.gaussian_smooth(rng.standard_normal(len(knot_times)), BURST_TIMESCALE_S * rate)
    depth = np.interp(knot_times, times, sn.weighted_sum(weights, BURST_DEPTH))
    envelope = sn.exp(depth * z / z.std() - depth**2)
    return np.interp(
        np.arange(n, dtype=np.float32) / np.float32(sfreq), knot_times, envelope
    ).astype(np.float32)


def _continuous_activity(rng, n: int, sfreq: float, subject: NightSubject, frames) -> np.ndarray:
    """Every channel's continuous activity; on the EEG channels it waxes and wanes."""
    rms = _component_rms(rng, subject, frames)
    spectra = _component_spectra(sfreq, subject)
    n_frames, n_bins = len(frames[0]), spectra.shape[1]
    fpz_coefficients = sn.random_coefficients(rng, n_frames, n_bins)
    signals = np.empty((4, n), dtype=np.float32)
    for channel, coherence in enumerate(COHERENCE_WITH_FPZ):
        coefficients = fpz_coefficients
        if channel != FPZ:
            coefficients = sn.correlated(
                fpz_coefficients, sn.random_coefficients(rng, n_frames, n_bins), coherence
            )
        signals[channel] = sn.synthesize(
            coefficients, sn.mix_amplitude(rms * CHANNEL_GAIN[channel], spectra), n
        )
    signals[[FPZ, PZ]] *= _burst_envelope(rng, n, sfreq, frames)
    return signals


def _vertex_waves(rng, n, sfreq, times, subject: NightSubject) -> np.ndarray:
    """Sharp negative vertex waves of drowsiness and light sleep: 40-120 µV, ~0.15 s."""
    track = np.zeros(n, dtype=np.float32)
    t = np.arange(int(0.5 * sfreq)) / sfreq
    wave = -sn.exp(-0.5 * ((t - 0.1) / 0.035) ** 2) + 0.3 * sn.exp(-0.5 * ((t - 0.22) / 0.06) ** 2)
    amp = rng.uniform(40, 120, len(times)) * subject.eeg_gain
    sn.add_waveforms(track, times, amp[:, None] * wave, sfreq)
    return track


def _sawtooth_waves(rng, n, sfreq, times, subject: NightSubject) -> np.ndarray:
    """REM sawtooth waves: trains of 3-8 triangular waves at 2-4 Hz, 20-60 µV, slow rise, sharp fall."""
    track = np.zeros(n, dtype=np.float32)
    k = len(times)
    freq = rng.uniform(2.0, 4.0, k)[:, None]
    durations = rng.integers(3, 9, k) / freq[:, 0]
    amp = (rng.uniform(20, 60, k) * subject.eeg_gain)[:, None]
    phase = rng.uniform(0, 2 * np.pi, k)[:, None]
    waves = sn.bursts(
        durations, sfreq, lambda t: amp * sps.sawtooth(2 * np.pi * freq * t + phase, width=0.85)
    )
    sn.add_waveforms(track, times, waves, sfreq)
    return track


def _arousals(rng, n, sfreq, frames, subject: NightSubject) -> tuple[np.ndarray, np.ndarray]:
    """Brief arousals from sleep (3-15 s, too short to score as wake): EEG ``(alpha + beta)`` and
    chin EMG bursts, ``(eeg_track, emg_track)``."""
    times, weights, _ = frames
    onsets = tr.frame_events(rng, (1 - weights[:, W]) * subject.arousals_per_h / 60, times)
    k = len(onsets)
    durations = rng.uniform(3.0, 15.0, k)
    alpha_hz = (subject.alpha_hz + rng.normal(0, 0.4, k))[:, None]
    alpha_uv = (rng.uniform(10, 25, k) * subject.eeg_gain * np.sqrt(subject.alpha_gain))[:, None]
    beta_uv = (rng.uniform(3, 8, k) * subject.eeg_gain)[:, None]
    emg_uv = (rng.uniform(10, 30, k) * subject.emg_gain)[:, None]
    phase = rng.uniform(0, 2 * np.pi, k)[:, None]
    eeg = np.zeros(n, dtype=np.float32)
    emg = np.zeros(n, dtype=np.float32)
    sn.add_waveforms(
        eeg,
        onsets,
        sn.bursts(
            durations,
            sfreq,
            lambda t: (
                alpha_uv * np.sin(2 * np.pi * alpha_hz * t + phase)
                + beta_uv * rng.standard_normal(t.shape)
            ),
        ),
        sfreq,
    )
    sn.add_waveforms(
        emg,
        onsets,
        sn.bursts(durations, sfreq, lambda t: emg_uv * rng.standard_normal(t.shape)),
        sfreq,
    )
    return eeg, emg


def _cardiac(rng, n, sfreq, frames, subject: NightSubject) -> np.ndarray:
    """ECG as a scalp or chin electrode picks it up: one QRS complex and T wave per beat (peak 1).

    Heart rate follows the stage (slowest in N3) and drifts; beats are placed where the
    integrated rate crosses a whole number, with a little beat-to-beat jitter.
    """
    times, weights, _ = frames
    step_s = times[1] - times[0]
    rate_hz = sn.weighted_sum(weights, HEART_RATE_BY_STAGE) * subject.heart_rate_bpm / 60
    rate_hz *= sn.slow_fluctuation(rng, len(times), 0.05, 120.0, step_s)
    beats_so_far = np.concatenate([[0.0], np.cumsum(rate_hz[:-1] * step_s)])
    beats = np.interp(np.arange(1, int(beats_so_far[-1])), beats_so_far, times)
    beats = np.clip(beats + rng.normal(0, 0.02, len(beats)), 0, n / sfreq)
    t = np.arange(int(0.45 * sfreq)) / sfreq
    qrs = (
        -0.2 * sn.exp(-0.5 * ((t - 0.06) / 0.01) ** 2)
        + sn.exp(-0.5 * ((t - 0.08) / 0.008) ** 2)
        - 0.3 * sn.exp(-0.5 * ((t - 0.1) / 0.01) ** 2)
        + 0.3 * sn.exp(-0.5 * ((t - 0.3) / 0.04) ** 2)
    )
    track = np.zeros(n, dtype=np.float32)
    sn.add_waveforms(
        track, beats, np.broadcast_to(qrs / np.abs(qrs).max(), (len(beats), len(qrs))), sfreq
    )
    return track


def _epochs_covered(spans: list[tuple[int, int]], n_epochs: int, epoch_len: int) -> np.ndarray:
    """Epochs more than half covered by the ``(start, length)`` sample spans."""
    covered = np.zeros(n_epochs * epoch_len, dtype=bool)
    for start, length in spans:
        covered[start : start + length] = True
    return covered.reshape(n_epochs, epoch_len).mean(axis=1) > 0.5


def realistic_night(
    rng: np.random.Generator,
    subject_index: int,
    n_epochs: int,
    sfreq: float,
    population: str | None,
) -> st.SleepNight:
    """The ``realistic`` generator behind :func:`epochstack.synthetic.sleep.generate_sleep_recording`."""
    group = hy.population_named(population)
    subject = NightSubject.draw(rng, group)
    true_stages = hy.simulate_night_hypnogram(rng, n_epochs, subject, group)
    labels = hy.score_hypnogram(rng, true_stages, subject.label_noise)
    hy.score_slow_wave_boundaries(rng, true_stages, labels)
    active_wake = hy.wake_substate(rng, true_stages, enter=0.15, stay=0.85)
    n = int(round(n_epochs * EPOCH_S * sfreq))
    frame_times = sn.frame_centres_s(n, sfreq)
    frame_epoch = np.minimum((frame_times // EPOCH_S).astype(int), n_epochs - 1)
    weights = hy.stage_weights(rng, true_stages, frame_times, subject.ramp_s, subject.rem_ramp_s)
    frames = (frame_times, weights, active_wake[frame_epoch])
    signals = _continuous_activity(rng, n, sfreq, subject, frames)

    rates = {**EVENT_RATES, "k_complex": EVENT_RATES["k_complex"].copy()}
    rates["k_complex"][N2] *= subject.k_complex_per_min

    def events(name, rate_scale=1.0):
        return tr.frame_events(rng, sn.weighted_sum(weights, rates[name]) * rate_scale, frame_times)

    eye, blinks = tr.eye_movements(
        rng, n, sfreq, true_stages, frames, subject, EVENT_RATES, ACTIVE_WAKE
    )
    blinks *= np.float32(subject.blink_uv / subject.eye_movement_uv)
    arousal_eeg, arousal_emg = _arousals(rng, n, sfreq, frames, subject)
    tracks = {
        "spindle": tr.spindles(rng, n, sfreq, events("spindle", subject.spindle_density), subject),
        "k_complex": tr.k_complexes(rng, n, sfreq, events("k_complex"), subject),
        "vertex": _vertex_waves(rng, n, sfreq, events("vertex"), subject),
        "sawtooth": _sawtooth_waves(rng, n, sfreq, events("sawtooth"), subject),
        "arousal": arousal_eeg,
        "eye": eye,
        "blink": blinks,
    }
    for name, track in tracks.items():
        for channel in (FPZ, PZ, EOG):
            signals[channel] += np.float32(EVENT_GAIN[name][channel]) * track
    signals[EMG] += arousal_emg + tr.twitches(rng, n, sfreq, frames, subject, EVENT_RATES["twitch"])
    heart = _cardiac(rng, n, sfreq, frames, subject)
    for channel, amp in enumerate(subject.ecg_uv):
        signals[channel] += np.float32(amp) * heart
    movements = tr.add_movement_artefacts(
        rng, signals, sfreq, frames, EVENT_RATES["movement"], (2.0, 20.0)
    )
    tr.add_mains(rng, signals, sfreq, subject.line_noise_uv)
    dropouts = tr.add_dropouts(rng, signals, sfreq, n / sfreq / 3600)
    epoch_len = int(round(EPOCH_S * sfreq))
    return st.SleepNight(
        recording=st.night_recording(subject_index, signals, sfreq, labels),
        true_stages=true_stages,
        movement_time=_epochs_covered(movements, n_epochs, epoch_len),
        unscorable=_epochs_covered(
            [(s, ln) for c, s, ln in dropouts if c in (FPZ, PZ)], n_epochs, epoch_len
        ),
    )
