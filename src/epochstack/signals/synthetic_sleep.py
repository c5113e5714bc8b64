"""Synthetic polysomnography (Sleep-EDF layout): a simulated hypnogram and the signals it implies.

:func:`generate_sleep_recording` is the entry point for both difficulties. ``realistic`` (the
default) lives in :mod:`.synthetic_sleep_realistic` and builds on the pieces here; this module
holds the ``easy`` generator and what both share. The hypnogram comes first (sleep onset,
~90-min NREM/REM cycles with N3 early and REM late, brief awakenings). Continuous rhythms are
then synthesised with the spectrum of the stage mix of each moment (cross-fading over seconds
at stage changes, over minutes into and out of REM), and transient events (spindles,
K-complexes, eye movements, twitches, artefacts) are added at stage-dependent rates. Stagers'
cues are the only thing that separates the stages, subjects differ in all of them, and the
labels carry a scorer's disagreement near stage changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from epochstack.errors import ParameterError
from epochstack.signals import synthetic_noise as sn
from epochstack.signals.recording import Recording

EPOCH_S = 30.0
STAGES = np.array(["W", "N1", "N2", "N3", "REM"])
W, N1, N2, N3, REM = range(5)
SLEEP_CHANNELS = ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"]
SLEEP_CHANNEL_TYPES = ["eeg", "eeg", "eog", "emg"]
FPZ, PZ, EOG, EMG = range(4)

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


def simulate_hypnogram(rng: np.random.Generator, n_epochs: int, cycle_min: float) -> np.ndarray:
    """True stage code per 30-s epoch (0=W .. 4=REM).

    A semi-Markov night: wake then N1 at sleep onset, then NREM/REM cycles of ``cycle_min``
    minutes in which N3 shrinks and REM grows cycle by cycle, an awakening after most REM
    periods, and brief arousals (more frequent late in the night). A recording shorter than
    one cycle is compressed so it still holds every stage.
    """
    total_min = n_epochs * EPOCH_S / 60
    bouts: list[tuple[int, float]] = [(W, rng.uniform(5, 20)), (N1, rng.uniform(2, 6))]
    cycle, elapsed, scale = 0, 0.0, 1.0
    while elapsed < total_min:
        n3 = max(0.0, rng.normal(35, 8) * sn.exp(-0.9 * cycle))
        rem = min(45.0, rng.uniform(8, 15) + cycle * rng.uniform(8, 12))
        n2 = max(8.0, cycle_min - n3 - rem - 4)
        first_n2 = n2 * rng.uniform(0.3, 0.5)
        bouts += [(N2, first_n2), (N3, n3), (N2, n2 - first_n2), (REM, rem)]
        if rng.random() < 0.6:
            bouts.append((W, rng.uniform(1, 4)))
        bouts.append((N1, rng.uniform(1, 3)))
        if cycle == 0:  # the first REM period must end inside the recording
            scale = min(1.0, 0.92 * total_min / sum(m for _, m in bouts[:-1]))
        elapsed = scale * sum(m for _, m in bouts)
        cycle += 1
    stages, minutes = np.array(bouts).T
    lengths = np.maximum(1, np.round(minutes * scale * 60 / EPOCH_S)).astype(int)
    hypnogram = fit_length(np.repeat(stages.astype(int), lengths), n_epochs)

    # Markov intrusions: N3 lightening to N2 and REM fragmented by N2 for an epoch, and
    # arousals (W then N1).
    light = (hypnogram == N3) & (rng.random(n_epochs) < 0.08)
    hypnogram[light] = N2
    fragment = (hypnogram == REM) & (rng.random(n_epochs) < 0.05)
    hypnogram[fragment] = N2
    hours = np.arange(n_epochs) * EPOCH_S / 3600
    asleep = np.isin(hypnogram, (N2, N3, REM))
    arousal = np.flatnonzero(asleep & (rng.random(n_epochs) < 0.008 + 0.006 * hours))
    hypnogram[arousal] = W
    after = arousal[arousal + 1 < n_epochs] + 1
    hypnogram[after] = np.where(hypnogram[after] == REM, REM, N1)
    return hypnogram


def fit_length(stages: np.ndarray, n_epochs: int, fill: int | None = None) -> np.ndarray:
    """``stages`` cut or padded to ``n_epochs`` (padding repeats the last stage, or ``fill``).

    Bout lengths are rounded to whole epochs, so their sum can fall an epoch short of the
    recording (issue 10: subject 136, 8 h, seed 42); the night then ends in the stage it was in.
    """
    missing = n_epochs - len(stages)
    if missing <= 0:
        return stages[:n_epochs]
    return np.concatenate(
        [stages, np.full(missing, stages[-1] if fill is None else fill, dtype=stages.dtype)]
    )


def score_hypnogram(
    rng: np.random.Generator, true_stages: np.ndarray, label_noise: float
) -> np.ndarray:
    """Stage labels as a human scorer gives them.

    At a share ``label_noise`` of stage changes, one of the two epochs beside the change takes
    its neighbour's stage; and N1, the stage scorers agree on least, is scored as wake or N2
    in a further share ``label_noise / 2`` of its epochs.
    """
    labels = true_stages.copy()
    change = np.flatnonzero(true_stages[:-1] != true_stages[1:])
    disputed = change[rng.random(len(change)) < label_noise]
    take_next = rng.random(len(disputed)) < 0.5
    labels[disputed[take_next]] = true_stages[disputed[take_next] + 1]
    labels[disputed[~take_next] + 1] = true_stages[disputed[~take_next]]
    n1 = np.flatnonzero((true_stages == N1) & (rng.random(len(true_stages)) < label_noise / 2))
    labels[n1] = rng.choice([W, N2], len(n1))
    return labels


def wake_substate(
    rng: np.random.Generator, hypnogram: np.ndarray, enter: float = 0.1, stay: float = 0.85
) -> np.ndarray:
    """True where a wake epoch is active (eyes open): a two-state chain that persists.

    A relaxed wake epoch turns active with probability ``enter``, an active one stays active
    with probability ``stay``.
    """
    active = np.zeros(len(hypnogram), dtype=bool)
    state = False
    for i, stage in enumerate(hypnogram):  # one step per epoch; cheap
        if stage != W:
            state = False
            continue
        state = (rng.random() < stay) if state else (rng.random() < enter)
        active[i] = state
    return active


def stage_weights(
    rng: np.random.Generator,
    true_stages: np.ndarray,
    frame_times: np.ndarray,
    ramp_s: float,
    rem_ramp_s: float,
) -> np.ndarray:
    """Share of each stage in each synthesis frame ``(n_frames, 5)``.

    Stage changes ramp over ``ramp_s`` seconds, entries into and out of REM over the slower
    ``rem_ramp_s``. N1 is a drowsy mix: each N1 epoch carries up to 40% wake and 40% N2.
    """
    mix = np.eye(len(STAGES))[true_stages]
    n1 = true_stages == N1
    blend = rng.uniform(0, 0.4, (int(n1.sum()), 2))
    mix[n1, W], mix[n1, N2], mix[n1, N1] = blend[:, 0], blend[:, 1], 1 - blend.sum(axis=1)
    epoch = np.minimum((frame_times // EPOCH_S).astype(int), len(true_stages) - 1)
    one_hot = mix[epoch].T
    step_s = frame_times[1] - frame_times[0]
    weights = sn.ramp(one_hot, ramp_s, step_s)
    weights[REM] = sn.ramp(one_hot[REM], rem_ramp_s, step_s)
    weights = np.clip(weights, 0, None)  # the running mean can leave -1e-17 where it should be 0
    return (weights / weights.sum(axis=0)).T


def frame_events(rng, rate_per_min: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    """Poisson event times (s) with a rate per synthesis frame (each frame spans one hop)."""
    step_s = frame_times[1] - frame_times[0]
    return np.clip(sn.stage_events(rng, rate_per_min, step_s) - step_s / 2, 0, None)


def spindles(rng, n, sfreq, times, subject: SleepSubject) -> np.ndarray:
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


def k_complexes(rng, n, sfreq, times, subject: SleepSubject) -> np.ndarray:
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
    rng,
    n,
    sfreq,
    true_stages,
    frames,
    subject,
    rates: dict = EVENT_RATES,
    active_gain: dict = ACTIVE_WAKE,
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


def twitches(rng, n, sfreq, frames, subject) -> np.ndarray:
    """Phasic muscle twitches on the chin EMG during REM: 0.1-0.4 s bursts."""
    track = np.zeros(n, dtype=np.float32)
    times = frame_events(rng, sn.weighted_sum(frames[1], EVENT_RATES["twitch"]), frames[0])
    amp = (rng.uniform(8, 25, len(times)) * subject.emg_gain)[:, None]
    waves = sn.bursts(
        rng.uniform(0.1, 0.4, len(times)), sfreq, lambda t: amp * rng.standard_normal(t.shape)
    )
    sn.add_waveforms(track, times, waves, sfreq)
    return track


def add_movement_artefacts(
    rng,
    signals,
    sfreq,
    frames,
    rates: np.ndarray = EVENT_RATES["movement"],
    duration_s: tuple[float, float] = (1.0, 6.0),
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
    return simulate_sleep_night(
        subject_index,
        hours=hours,
        sfreq=sfreq,
        seed=seed,
        difficulty=difficulty,
        population=population,
    ).recording


def simulate_sleep_night(
    subject_index: int,
    *,
    hours: float,
    sfreq: float = 100.0,
    seed: int = 42,
    difficulty: str = "realistic",
    population: str | None = None,
) -> SleepNight:
    """:func:`generate_sleep_recording` with the simulator's ground truth (:class:`SleepNight`)."""
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
    # imported here: the realistic generator builds on this module's pieces
    from epochstack.signals.synthetic_sleep_realistic import realistic_night

    return realistic_night(rng, subject_index, n_epochs, float(sfreq), population)


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


def _easy_night(
    rng: np.random.Generator, subject_index: int, n_epochs: int, sfreq: float, hours: float
) -> SleepNight:
    """The ``easy`` generator: box spectra, few transients (see docs/synthetic_data.md)."""
    subject = SleepSubject.draw(rng)
    true_stages = simulate_hypnogram(rng, n_epochs, subject.cycle_min)
    labels = score_hypnogram(rng, true_stages, subject.label_noise)
    active_wake = wake_substate(rng, true_stages)
    n = int(round(n_epochs * EPOCH_S * sfreq))

    # Continuous activity: a spectrum per frame and channel from the stage mix, synthesised.
    frame_times = sn.frame_centres_s(n, sfreq)
    frame_epoch = np.minimum((frame_times // EPOCH_S).astype(int), n_epochs - 1)
    frames = (
        frame_times,
        stage_weights(rng, true_stages, frame_times, subject.ramp_s, subject.rem_ramp_s),
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
    weights = frames[1]
    events = {
        "spindle": spindles(
            rng,
            n,
            sfreq,
            frame_events(
                rng,
                sn.weighted_sum(weights, EVENT_RATES["spindle"]) * subject.spindle_density,
                frame_times,
            ),
            subject,
        ),
        "k_complex": k_complexes(
            rng,
            n,
            sfreq,
            frame_events(rng, sn.weighted_sum(weights, EVENT_RATES["k_complex"]), frame_times),
            subject,
        ),
        "eye": sum(eye_movements(rng, n, sfreq, true_stages, frames, subject)),
    }
    for name, track in events.items():
        for channel in (FPZ, PZ, EOG):
            if EVENT_GAIN[name][channel]:
                signals[channel] += np.float32(EVENT_GAIN[name][channel]) * track
    signals[EMG] += twitches(rng, n, sfreq, frames, subject)
    add_movement_artefacts(rng, signals, sfreq, frames)
    add_mains(rng, signals, sfreq, subject.line_noise_uv)
    add_dropouts(rng, signals, sfreq, hours)

    return SleepNight(
        recording=night_recording(subject_index, signals, sfreq, labels),
        true_stages=true_stages,
        movement_time=np.zeros(n_epochs, dtype=bool),
        unscorable=np.zeros(n_epochs, dtype=bool),
    )
