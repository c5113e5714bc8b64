"""The sleep task: :func:`generate_sleep_recording` for both difficulties, and the ``easy`` generator.

``realistic`` (the default) lives in :mod:`.sleep_realistic`. Both draw a hypnogram
(:mod:`.hypnogram`), synthesise continuous rhythms with the spectrum of the stage mix of each
moment (cross-fading over seconds at stage changes, over minutes into and out of REM) and add
transient events at stage-dependent rates (:mod:`.transients`). Stagers' cues are the only thing
that separates the stages, subjects differ in all of them, and the labels carry a scorer's
disagreement near stage changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from epochstack.errors import ParameterError
from epochstack.signals.recording import Recording
from epochstack.synthetic import hypnogram as hy
from epochstack.synthetic import noise as sn
from epochstack.synthetic import stages as st
from epochstack.synthetic import transients as tr
from epochstack.synthetic.sleep_realistic import realistic_night
from epochstack.synthetic.stages import EMG, EOG, EPOCH_S, FPZ, PZ, REM, SLEEP_CHANNELS, W

# Amplitude (RMS, µV) of each continuous component per stage, W N1 N2 N3 REM, for a reference
# subject at its strongest channel. Wake values are for relaxed (eyes-closed) wake.
STAGE_RMS = {
    "background": [9.0, 10.0, 12.0, 14.0, 9.0],  # 1/f
    "delta": [5.0, 10.0, 18.0, 40.0, 12.0],  # 0.4-2 Hz slow waves
    "theta": [4.0, 8.0, 8.0, 6.0, 10.0],  # 4-8 Hz (N1, REM sawtooth)
    "alpha": [15.0, 6.0, 2.0, 1.5, 5.0],  # subject peak 8.5-11.5 Hz
    "beta": [5.0, 2.5, 1.5, 1.0, 3.0],  # 15-30 Hz
    "slow_eye": [6.0, 10.0, 5.0, 0.0, 3.0],  # rolling eye movements, 0.15-0.6 Hz
    "emg": [18.0, 12.0, 9.0, 8.0, 5.0],  # chin tone (REM atonia)
}
COMPONENTS = [*STAGE_RMS, "amplifier"]
# Share of each component on Fpz-Cz, Pz-Oz, EOG and EMG (EEG sources leak into the frontal
# EOG, eye movements into Fpz, muscle into the EEG); the amplifier noise is every channel's own.
CHANNEL_GAIN = np.array(
    [
        # background delta theta alpha beta slow_eye emg amplifier
        [1.0, 1.0, 0.8, 0.45, 1.0, 0.3, 0.05, 1.0],  # EEG Fpz-Cz
        [0.9, 0.6, 0.7, 1.0, 0.7, 0.0, 0.02, 1.0],  # EEG Pz-Oz
        [0.3, 0.45, 0.15, 0.05, 0.3, 1.0, 0.1, 1.0],  # EOG horizontal
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0],  # EMG submental
    ]
)
# Share of each channel's random spectrum it has in common with Fpz-Cz.
COHERENCE_WITH_FPZ = (1.0, 0.3, 0.5, 0.0)
# Events per minute per stage, W N1 N2 N3 REM.
EVENT_RATES = {
    "spindle": np.array([0.0, 0.3, 4.0, 1.5, 0.0]),
    "k_complex": np.array([0.0, 0.2, 1.2, 0.4, 0.0]),
    "saccade": np.array([25.0, 1.0, 0.0, 0.0, 0.0]),
    "blink": np.array([12.0, 2.0, 0.0, 0.0, 0.0]),
    "movement": np.array([0.5, 0.08, 0.02, 0.01, 0.04]),
    "twitch": np.array([0.0, 0.0, 0.0, 0.0, 8.0]),
}
# Share of spindles, K-complexes and eye movements on Fpz-Cz, Pz-Oz and the EOG.
EVENT_GAIN = {"spindle": (1.0, 0.55, 0.1), "k_complex": (1.0, 0.5, 0.4), "eye": (0.25, 0.0, 1.0)}
# Active (eyes-open) wake relative to relaxed wake.
ACTIVE_WAKE = {"alpha": 0.3, "beta": 1.6, "emg": 1.8, "saccade": 2.0, "blink": 2.0}


@dataclass(frozen=True)
class SleepSubject:
    """Traits of one simulated sleeper, drawn once per subject."""

    eeg_gain: float
    delta_gain: float
    alpha_gain: float
    alpha_hz: float
    spindle_density: float
    spindle_hz: float
    emg_gain: float
    rem_atonia: float
    background_exponent: float
    background_floor: float
    amplifier_uv: float
    eye_movement_uv: float
    cycle_min: float
    label_noise: float
    ramp_s: float
    rem_ramp_s: float
    line_noise_uv: tuple[float, float, float, float]

    @classmethod
    def draw(cls, rng: np.random.Generator) -> SleepSubject:
        return cls(
            eeg_gain=rng.lognormal(0, 0.15),
            delta_gain=rng.lognormal(0, 0.15),
            alpha_gain=rng.lognormal(0, 0.3),
            alpha_hz=rng.uniform(8.5, 11.5),
            spindle_density=rng.uniform(0.7, 1.3),
            spindle_hz=rng.uniform(12.0, 14.5),
            emg_gain=rng.lognormal(0, 0.3),
            rem_atonia=rng.lognormal(0, 0.3),
            background_exponent=rng.uniform(1.5, 2.2),
            background_floor=rng.uniform(0.002, 0.01),
            amplifier_uv=rng.uniform(0.5, 2.5),
            eye_movement_uv=rng.uniform(40.0, 120.0),
            cycle_min=rng.uniform(85.0, 105.0),
            label_noise=rng.uniform(0.2, 0.4),
            ramp_s=rng.uniform(4.0, 10.0),
            rem_ramp_s=rng.uniform(60.0, 150.0),
            line_noise_uv=tuple(rng.lognormal(np.log(2.0), 0.9, size=4)),
        )


def _component_rms(rng, subject: SleepSubject, frames) -> np.ndarray:
    """RMS (µV) of every continuous component in every synthesis frame ``(n_frames, n_components)``."""
    times, weights, active = frames
    rms = sn.weighted_sum(weights, np.array(list(STAGE_RMS.values())).T)
    for name, factor in ACTIVE_WAKE.items():
        if name in STAGE_RMS:
            rms[:, COMPONENTS.index(name)] *= 1 + (factor - 1) * weights[:, W] * active
    rms[:, COMPONENTS.index("emg")] *= 1 + (subject.rem_atonia - 1) * weights[:, REM]
    gain = {
        "background": subject.eeg_gain,
        "delta": subject.eeg_gain * subject.delta_gain,
        "theta": subject.eeg_gain,
        "alpha": subject.eeg_gain * subject.alpha_gain,
        "beta": subject.eeg_gain,
        "slow_eye": subject.eye_movement_uv / 80.0,
        "emg": subject.emg_gain,
    }
    rms *= np.array([gain[c] for c in STAGE_RMS])
    step_s = times[1] - times[0]
    drift_sigma = {"emg": 0.4, "alpha": 0.4}
    for i, name in enumerate(STAGE_RMS):
        rms[:, i] *= sn.slow_fluctuation(rng, len(times), drift_sigma.get(name, 0.25), 30.0, step_s)
    return np.column_stack([rms, np.full(len(times), subject.amplifier_uv)])


def _component_spectra(sfreq: float, subject: SleepSubject) -> np.ndarray:
    """Unit-power spectrum of every component over the synthesis bins ``(n_components, n_bins)``."""
    f = sn.bin_frequencies(sfreq)
    return np.stack(
        [
            sn.power_law(f, subject.background_exponent, subject.background_floor),
            sn.band(f, 0.4, 2.0),
            sn.band(f, 4.0, 8.0),
            sn.peak(f, subject.alpha_hz, 0.5),
            sn.band(f, 15.0, 30.0),
            sn.band(f, 0.15, 0.6),
            sn.band(f, 10.0, sfreq / 2),
            sn.band(f, 0.1, sfreq / 2),
        ]
    )


DIFFICULTIES = ("realistic", "easy")


def generate_sleep_recording(
    subject_index: int,
    *,
    hours: float,
    sfreq: float = 100.0,
    seed: int = 42,
    difficulty: str = "realistic",
    population: str | None = None,
) -> Recording:
    """One simulated night of subject ``subject_index``: 4 channels in µV and a 30-s hypnogram.

    ``difficulty="realistic"`` (default) simulates whole nights as hard to stage as real ones
    (aperiodic spectra, transients, subject variability; ``population`` ``young``, ``adult`` or
    ``older``, ``None`` = ``adult``); ``"easy"`` is the earlier, quickly learnt generator. The data
    depend only on ``(seed, subject_index)`` (and the requested length, rate and difficulty).
    """
    options = dict(
        hours=hours, sfreq=sfreq, seed=seed, difficulty=difficulty, population=population
    )
    return simulate_sleep_night(subject_index, **options).recording


def simulate_sleep_night(
    subject_index: int,
    *,
    hours: float,
    sfreq: float = 100.0,
    seed: int = 42,
    difficulty: str = "realistic",
    population: str | None = None,
) -> st.SleepNight:
    """:func:`generate_sleep_recording` with the simulator's ground truth (:class:`~.stages.SleepNight`)."""
    n_epochs = int(round(hours * 3600 / EPOCH_S))
    if n_epochs < 10:
        raise ParameterError(
            "dataset.synthetic.hours_per_subject",
            f"{hours} h gives {n_epochs} sleep epochs.",
            "use at least 0.1 h.",
        )
    if sfreq < 40:
        raise ParameterError(
            "dataset.synthetic.sfreq",
            f"{sfreq} Hz is too low for spindles and beta.",
            "use at least 40 Hz.",
        )
    if difficulty not in DIFFICULTIES:
        raise ParameterError(
            "dataset.synthetic.difficulty",
            f"unknown difficulty {difficulty!r}.",
            f"use one of {DIFFICULTIES}.",
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, subject_index]))
    if difficulty == "easy":
        if population is not None:
            raise ParameterError(
                "dataset.synthetic.population",
                f"{population!r} needs difficulty realistic (the easy generator has one population).",
                "set dataset.synthetic.population: null or dataset.synthetic.difficulty: realistic.",
            )
        return _easy_night(rng, subject_index, n_epochs, float(sfreq), float(hours))
    return realistic_night(rng, subject_index, n_epochs, float(sfreq), population)


def _easy_night(
    rng: np.random.Generator, subject_index: int, n_epochs: int, sfreq: float, hours: float
) -> st.SleepNight:
    """The ``easy`` generator: box spectra, few transients (see docs/synthetic_data.md)."""
    subject = SleepSubject.draw(rng)
    true_stages = hy.simulate_hypnogram(rng, n_epochs, subject.cycle_min)
    labels = hy.score_hypnogram(rng, true_stages, subject.label_noise)
    active_wake = hy.wake_substate(rng, true_stages)
    n = int(round(n_epochs * EPOCH_S * sfreq))

    # Continuous activity: a spectrum per frame and channel from the stage mix, synthesised.
    frame_times = sn.frame_centres_s(n, sfreq)
    frame_epoch = np.minimum((frame_times // EPOCH_S).astype(int), n_epochs - 1)
    frames = (
        frame_times,
        hy.stage_weights(rng, true_stages, frame_times, subject.ramp_s, subject.rem_ramp_s),
        active_wake[frame_epoch],
    )
    rms = _component_rms(rng, subject, frames)
    spectra = _component_spectra(sfreq, subject)
    n_bins = spectra.shape[1]
    fpz_coefficients = sn.random_coefficients(rng, len(frame_times), n_bins)
    signals = np.empty((len(SLEEP_CHANNELS), n), dtype=np.float32)
    for channel, coherence in enumerate(COHERENCE_WITH_FPZ):
        coefficients = fpz_coefficients
        if channel != FPZ:
            coefficients = sn.correlated(
                fpz_coefficients, sn.random_coefficients(rng, len(frame_times), n_bins), coherence
            )
        signals[channel] = sn.synthesize(
            coefficients, sn.mix_amplitude(rms * CHANNEL_GAIN[channel], spectra), n
        )

    # Transient events on top.
    def times(name, rate_scale=1.0):
        rate = sn.weighted_sum(frames[1], EVENT_RATES[name]) * rate_scale
        return tr.frame_events(rng, rate, frame_times)

    events = {
        "spindle": tr.spindles(rng, n, sfreq, times("spindle", subject.spindle_density), subject),
        "k_complex": tr.k_complexes(rng, n, sfreq, times("k_complex"), subject),
        "eye": sum(
            tr.eye_movements(rng, n, sfreq, true_stages, frames, subject, EVENT_RATES, ACTIVE_WAKE)
        ),
    }
    for name, track in events.items():
        for channel in (FPZ, PZ, EOG):
            if EVENT_GAIN[name][channel]:
                signals[channel] += np.float32(EVENT_GAIN[name][channel]) * track
    signals[EMG] += tr.twitches(rng, n, sfreq, frames, subject, EVENT_RATES["twitch"])
    tr.add_movement_artefacts(rng, signals, sfreq, frames, EVENT_RATES["movement"], (1.0, 6.0))
    tr.add_mains(rng, signals, sfreq, subject.line_noise_uv)
    tr.add_dropouts(rng, signals, sfreq, hours)

    return st.SleepNight(
        recording=st.night_recording(subject_index, signals, sfreq, labels),
        true_stages=true_stages,
        movement_time=np.zeros(n_epochs, dtype=bool),
        unscorable=np.zeros(n_epochs, dtype=bool),
    )
