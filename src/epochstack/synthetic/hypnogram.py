"""Hypnograms of the simulated nights: when each stage happens and how a scorer labels it.

Both sleep generators draw their true stages here (:func:`simulate_hypnogram` for ``easy``,
:func:`simulate_night_hypnogram` from a :class:`Population` for ``realistic``), score them like
a human (:func:`score_hypnogram`), mark eyes-open wake (:func:`wake_substate`) and turn them
into the stage mix of each synthesis frame (:func:`stage_weights`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from epochstack.errors import ParameterError
from epochstack.synthetic import noise as sn
from epochstack.synthetic.stages import EPOCH_S, N1, N2, N3, REM, STAGES, W


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


@dataclass(frozen=True)
class Population:
    """Sleep architecture of a group of healthy sleepers (minutes unless named otherwise)."""

    sleep_latency_min: float  # median; log-normal between subjects
    n3_first_cycle_min: float  # N3 in the first cycle; it fades cycle by cycle
    n3_decay: float  # N3 of cycle k = first * exp(-n3_decay * k)
    awakenings_per_h: float  # awakenings (>= 30 s) per hour of sleep, besides those after REM
    awakening_min: float  # their median length
    n1_shifts_per_h: float  # brief shifts from N2 to N1 per hour of N2
    arousals_per_h: tuple[float, float]  # brief (3-15 s) arousals per hour of sleep, subject range
    final_wake_min: tuple[float, float]  # awake in bed before lights on
    slow_wave_gain: float  # slow-wave amplitude relative to young adults' ...
    spindle_density: float  # ... spindle density ...
    alpha_shift_hz: float  # ... and alpha frequency


POPULATIONS = {
    "young": Population(10.0, 55.0, 0.8, 0.5, 1.5, 2.0, (6.0, 12.0), (3.0, 15.0), 1.25, 1.15, 0.3),
    "adult": Population(14.0, 45.0, 0.9, 1.0, 2.0, 3.5, (10.0, 18.0), (5.0, 20.0), 1.0, 1.0, 0.0),
    "older": Population(
        22.0, 20.0, 1.0, 2.4, 3.5, 5.0, (18.0, 30.0), (10.0, 30.0), 0.6, 0.65, -0.8
    ),
}
DEFAULT_POPULATION = "adult"


def population_named(name: str | None) -> Population:
    """The :class:`Population` called ``name`` (``None``: healthy adults)."""
    key = DEFAULT_POPULATION if name is None else str(name)
    if key not in POPULATIONS:
        raise ParameterError(
            "dataset.synthetic.population",
            f"unknown population {name!r}.",
            f"use null or one of {sorted(POPULATIONS)}.",
        )
    return POPULATIONS[key]


def simulate_night_hypnogram(
    rng: np.random.Generator, n_epochs: int, subject, population: Population
) -> np.ndarray:
    """True stage code per 30-s epoch (0=W .. 4=REM) of a night from lights out to lights on.

    ``subject`` is the sleeper's :class:`~epochstack.synthetic.sleep_realistic.NightSubject`
    (its ``sleep_need_min`` and ``cycle_min`` shape the night).

    Sleep latency, then NREM/REM cycles (N3 early, REM growing cycle by cycle, most REM periods
    ending in a brief awakening or N1) for as long as the subject sleeps, then wake until the
    recording ends; a recording longer than the subject's sleep need holds more wake at both
    ends (like Sleep-EDF's day-long files). Awakenings, brief shifts to N1 and epoch-level
    intrusions (N3 lightening, REM fragmented by N2) are sprinkled over the sleep. A recording too
    short for lights out, one cycle and lights on is compressed so it still holds every stage.
    """
    total_min = n_epochs * EPOCH_S / 60
    latency = min(60.0, rng.lognormal(np.log(population.sleep_latency_min), 0.5))
    final_wake = rng.uniform(*population.final_wake_min)
    spare = max(0.0, total_min - latency - final_wake - subject.sleep_need_min)
    before = rng.uniform(0.2, 0.5)
    lights_out, lights_on = latency + before * spare, final_wake + (1 - before) * spare

    bouts: list[tuple[int, float]] = [(W, lights_out), (N1, rng.uniform(2, 7))]
    cycle, scale = 0, 1.0
    while cycle == 0 or scale * sum(m for _, m in bouts) < total_min - scale * lights_on:
        n3 = max(
            0.0, rng.normal(population.n3_first_cycle_min, 8) * sn.exp(-population.n3_decay * cycle)
        )
        rem = min(35.0, rng.uniform(5, 12) + cycle * rng.uniform(6, 10))
        n2 = max(10.0, subject.cycle_min - n3 - rem - 4)
        first_n2 = n2 * rng.uniform(0.3, 0.5)
        bouts += [(N2, first_n2), (N3, n3), (N2, n2 - first_n2), (REM, rem)]
        bouts.append((W, rng.uniform(1, 4)) if rng.random() < 0.5 else (N1, rng.uniform(1, 3)))
        if cycle == 0:  # lights out, the first cycle and lights on must fit the recording
            scale = min(1.0, 0.95 * total_min / (sum(m for _, m in bouts[:-1]) + lights_on))
        cycle += 1
    stages, minutes = np.array(bouts).T
    stages = stages.astype(int)
    first_rem = int(np.argmax(stages == REM))
    while True:  # rounding to whole epochs must leave the first REM period inside the night
        lengths = np.maximum(
            np.where(stages == REM, 3, 1), np.round(minutes * scale * 60 / EPOCH_S)
        ).astype(int)
        wake_after = max(1, int(round(lights_on * scale * 60 / EPOCH_S)))
        if lengths[: first_rem + 1].sum() <= n_epochs - wake_after or scale < 0.01:
            break
        scale *= 0.9
    asleep = fit_length(np.repeat(stages, lengths), n_epochs - wake_after)
    hypnogram = np.concatenate([asleep, np.full(wake_after, W)])
    if scale < 1.0:  # a compressed night keeps its bare skeleton
        return hypnogram
    _add_awakenings(rng, hypnogram, population)
    _add_n1_shifts(rng, hypnogram, population)
    light = (hypnogram == N3) & (rng.random(n_epochs) < 0.08)
    hypnogram[light] = N2
    fragment = (hypnogram == REM) & (rng.random(n_epochs) < 0.04)
    hypnogram[fragment] = N2
    return hypnogram


def _add_awakenings(rng, hypnogram: np.ndarray, population: Population) -> None:
    """Wake after sleep onset: awakenings of a minute or more, each followed by N1, in place."""
    sleep = np.flatnonzero(hypnogram != W)
    if len(sleep) < 10:
        return
    onset, end = sleep[0], sleep[-1]
    hours = (end - onset) * EPOCH_S / 3600
    starts = rng.integers(
        onset + 10, max(onset + 11, end), rng.poisson(population.awakenings_per_h * hours)
    )
    lengths = np.maximum(
        1, np.round(rng.lognormal(np.log(population.awakening_min * 2), 0.6, len(starts)))
    ).astype(int)
    drowsy = rng.integers(1, 4, len(starts))
    for start, length, n1 in zip(starts, lengths, drowsy, strict=True):
        stop = min(end, start + length)
        hypnogram[start:stop] = W
        back = slice(stop, min(end, stop + n1))
        hypnogram[back] = np.where(hypnogram[back] == REM, REM, N1)


def _add_n1_shifts(rng, hypnogram: np.ndarray, population: Population) -> None:
    """Light sleep drifting up to N1 for 1-3 epochs now and then, in place."""
    n2 = np.flatnonzero(hypnogram == N2)
    starts = rng.choice(
        n2,
        min(len(n2), rng.poisson(population.n1_shifts_per_h * len(n2) * EPOCH_S / 3600)),
        replace=False,
    )
    for start, length in zip(starts, rng.integers(1, 4, len(starts)), strict=True):
        run = slice(start, start + length)
        hypnogram[run] = np.where(hypnogram[run] == N2, N1, hypnogram[run])


def score_slow_wave_boundaries(rng, true_stages: np.ndarray, labels: np.ndarray) -> None:
    """Scorers disagree most on where N3 begins and ends (the 20 % slow-wave rule, judged by
    eye): each N2/N3 boundary moves by up to two epochs either way in the labels, in place."""
    deep_or_light = np.isin(true_stages, (N2, N3))
    change = np.flatnonzero(
        deep_or_light[:-1] & deep_or_light[1:] & (true_stages[:-1] != true_stages[1:])
    )
    shifts = rng.choice([-2, -1, 0, 1, 2], len(change), p=[0.15, 0.2, 0.3, 0.2, 0.15])
    for boundary, shift in zip(change, shifts, strict=True):
        if shift > 0:  # the earlier stage reaches into the later one
            run, stage = (
                np.arange(boundary + 1, min(len(labels), boundary + 1 + shift)),
                true_stages[boundary],
            )
        else:  # the later stage starts earlier (or the boundary stays)
            run, stage = (
                np.arange(max(0, boundary + 1 + shift), boundary + 1),
                true_stages[boundary + 1],
            )
        labels[run[deep_or_light[run]]] = stage
