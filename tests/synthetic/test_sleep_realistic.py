"""The realistic synthetic nights (issue 13) and the night-length crash of issue 10."""

import numpy as np
import pytest
from scipy import signal, stats

from epochstack.errors import ParameterError
from epochstack.synthetic import (
    generate_sleep_recording,
    simulate_sleep_night,
    synthetic_recordings,
)
from epochstack.synthetic import hypnogram as hy
from epochstack.synthetic import sleep as ss
from epochstack.synthetic import sleep_realistic as sr
from epochstack.synthetic.stages import N1, N3, REM, W

SFREQ = 100.0
STAGES = ["W", "N1", "N2", "N3", "REM"]


def _epochs(rec):
    return rec.signals.reshape(len(rec.channel_names), len(rec.epoch_labels), -1).transpose(1, 0, 2)


def _nights(difficulty, n=3, hours=3.0):
    return [
        generate_sleep_recording(i, hours=hours, seed=21, difficulty=difficulty) for i in range(n)
    ]


@pytest.fixture(scope="module")
def realistic():
    """Three 3-h realistic nights: lights out, two cycles, lights on."""
    return _nights("realistic")


@pytest.fixture(scope="module")
def easy():
    return _nights("easy")


def _worst_spectral_cliff(nights) -> float:
    """Largest drop (decades) between neighbouring 1-Hz bins, 1-30 Hz, of any stage's mean log
    PSD of Fpz-Cz after removing its fitted 1/f line (a line in log-log)."""
    worst = 0.0
    for stage in STAGES:
        epochs = np.concatenate([_epochs(r)[r.epoch_labels == stage, 0] for r in nights])
        if len(epochs) < 5:
            continue
        f, psd = signal.welch(epochs, fs=SFREQ, nperseg=int(SFREQ), axis=-1)
        keep = (f >= 1) & (f <= 30)
        mean = np.log10(psd[:, keep]).mean(axis=0)
        log_f = np.log10(f[keep])
        residual = mean - np.polyval(np.polyfit(log_f, mean, 1), log_f)
        worst = max(worst, float(np.max(residual[:-1] - residual[1:])))
    return worst


def _median_kurtosis(nights, stage) -> float:
    epochs = np.concatenate([_epochs(r)[r.epoch_labels == stage, 0] for r in nights])
    return float(np.median(stats.kurtosis(epochs, axis=-1)))


def test_nights_never_end_an_epoch_short_issue_10():
    rec = generate_sleep_recording(
        136, hours=8.0, sfreq=SFREQ, seed=42, difficulty="easy"
    )  # crashed before
    assert len(rec.epoch_labels) == 960 and rec.n_samples == 960 * 3000
    # Hypnograms alone (cheap): every subject and night length up to 12 h fills the night exactly.
    for hours in (6.0, 8.0, 10.0, 12.0):
        n_epochs = int(hours * 120)
        for subject in range(300):
            rng = np.random.default_rng(np.random.SeedSequence([42, subject]))
            easy = hy.simulate_hypnogram(
                rng, n_epochs, cycle_min=ss.SleepSubject.draw(rng).cycle_min
            )
            group = hy.population_named(None)
            real = hy.simulate_night_hypnogram(
                rng, n_epochs, sr.NightSubject.draw(rng, group), group
            )
            assert len(easy) == len(real) == n_epochs


def test_whole_nights_have_wake_at_both_ends_and_adult_proportions():
    props, first, last = [], [], []
    for subject in range(40):
        rng = np.random.default_rng(np.random.SeedSequence([5, subject]))
        group = hy.population_named(None)
        night = hy.simulate_night_hypnogram(rng, 960, sr.NightSubject.draw(rng, group), group)
        props.append(np.bincount(night, minlength=5) / len(night))
        first.append(night[0])
        last.append(night[-1])
    share = np.mean(props, axis=0)
    sleep = 1 - share[W]
    assert set(first) == set(last) == {W}  # lights out and lights on awake
    assert (
        0.03 < share[N1] / sleep < 0.10
        and 0.10 < share[N3] / sleep < 0.22
        and 0.17 < share[REM] / sleep < 0.27
    )
    assert 0.05 < share[W] < 0.20


def test_older_sleepers_have_less_n3_and_more_wake_than_young_ones():
    def shares(population):
        group = hy.population_named(population)
        out = []
        for subject in range(40):
            rng = np.random.default_rng(np.random.SeedSequence([9, subject]))
            night = hy.simulate_night_hypnogram(rng, 960, sr.NightSubject.draw(rng, group), group)
            out.append(np.bincount(night, minlength=5) / len(night))
        return np.mean(out, axis=0)

    young, older = shares("young"), shares("older")
    assert older[N3] < 0.5 * young[N3] and older[W] > 1.5 * young[W] and older[N1] > young[N1]


def test_spectra_are_smooth_unlike_the_easy_boxes(realistic, easy):
    assert _worst_spectral_cliff(realistic) < 0.3
    assert _worst_spectral_cliff(easy) > 0.3  # the same measure catches the box spectra


def test_nrem_eeg_is_leptokurtic_unlike_the_easy_gaussian_noise(realistic, easy):
    assert _median_kurtosis(realistic, "N2") > 0.5 and _median_kurtosis(realistic, "N3") > 0.5
    assert _median_kurtosis(easy, "N2") < 0.3


def test_stage_physiology(realistic):
    def by_stage(values_of):
        values = np.concatenate([values_of(_epochs(r)) for r in realistic])
        labels = np.concatenate([r.epoch_labels for r in realistic])
        return {stage: np.median(values[labels == stage]) for stage in STAGES}

    def power(e, low, high):
        f, psd = signal.welch(e, fs=SFREQ, nperseg=400, axis=-1)
        return psd[..., (f >= low) & (f < high)].sum(axis=-1)

    emg = by_stage(lambda e: e[:, 3].std(axis=-1))
    assert emg["REM"] < emg["N2"] < emg["W"]  # atonia, waking tone
    delta = by_stage(lambda e: power(e[:, 0], 0.5, 2.0))
    assert delta["N3"] > 2 * delta["N2"] > 2 * delta["REM"]
    alpha = by_stage(lambda e: power(e[:, 1], 8.0, 12.0))
    assert alpha["W"] > 2 * alpha["N3"]
    sigma = by_stage(lambda e: power(e[:, 0], 11.0, 15.0) / power(e[:, 0], 4.0, 8.0))
    assert sigma["N2"] > 1.5 * sigma["REM"]
    assert (
        np.median(
            np.ptp(
                np.concatenate([_epochs(r)[r.epoch_labels == "N3", 0] for r in realistic]), axis=-1
            )
        )
        > 75
    )


def test_ground_truth_and_scorer_labels():
    night = simulate_sleep_night(4, hours=3.0, seed=2)
    scored = night.recording.epoch_labels
    assert (
        len(night.true_stages) == len(scored) == len(night.movement_time) == len(night.unscorable)
    )
    agreement = np.mean(np.array(STAGES)[night.true_stages] == scored)
    assert 0.8 < agreement < 1.0  # a scorer disagrees near stage changes, not everywhere
    assert night.true_stages.min() >= W and night.true_stages.max() <= REM
    assert (night.true_stages == N1).any()


def test_difficulty_and_population_reach_the_generator_and_bad_values_name_the_key():
    realistic = synthetic_recordings("sleep", 1, 0.25, None, seed=3)["sub-000_night-1"]()
    easy = synthetic_recordings("sleep", 1, 0.25, None, seed=3, difficulty="easy")[
        "sub-000_night-1"
    ]()
    older = synthetic_recordings("sleep", 1, 0.25, None, seed=3, population="older")[
        "sub-000_night-1"
    ]()
    assert not np.array_equal(realistic.signals, easy.signals)
    assert not np.array_equal(realistic.signals, older.signals)
    with pytest.raises(ParameterError, match=r"dataset\.synthetic\.difficulty"):
        generate_sleep_recording(0, hours=0.5, difficulty="hard")
    with pytest.raises(
        ParameterError, match=r"dataset\.synthetic\.population.*'adult', 'older', 'young'"
    ):
        generate_sleep_recording(0, hours=0.5, population="teen")
    with pytest.raises(ParameterError, match=r"dataset\.synthetic\.population.*realistic"):
        generate_sleep_recording(0, hours=0.5, difficulty="easy", population="older")
    with pytest.raises(ParameterError, match=r"dataset\.synthetic\.population.*sleep task"):
        synthetic_recordings("seizure", 1, 0.5, None, seed=0, population="older")
