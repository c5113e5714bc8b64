import pickle

import numpy as np
import pytest
from scipy import signal

from epochstack.synthetic import generate_sleep_recording, synthetic_recordings
from epochstack.synthetic import noise as sn
from epochstack.synthetic.hypnogram import score_hypnogram, simulate_hypnogram
from epochstack.synthetic.stages import N1, N3, REM, SLEEP_CHANNELS, W

SFREQ = 100.0


@pytest.fixture(scope="module")
def nights():
    """Three 2-h nights of the easy generator: enough for a full NREM/REM cycle each."""
    return [generate_sleep_recording(i, hours=2.0, seed=11, difficulty="easy") for i in range(3)]


def _epochs(rec):
    n_epochs = len(rec.epoch_labels)
    return rec.signals.reshape(len(rec.channel_names), n_epochs, -1).transpose(1, 0, 2)


def _band_power(epochs, low, high):
    f, psd = signal.welch(epochs, fs=SFREQ, nperseg=int(4 * SFREQ), axis=-1)
    return psd[..., (f >= low) & (f < high)].sum(axis=-1)


def _by_stage(nights, values_of):
    """Median over all nights of ``values_of(epochs)`` for each scored stage."""
    values = np.concatenate([values_of(_epochs(rec)) for rec in nights])
    labels = np.concatenate([rec.epoch_labels for rec in nights])
    return {stage: np.median(values[labels == stage]) for stage in np.unique(labels)}


@pytest.mark.parametrize("difficulty", ["realistic", "easy"])
def test_same_seed_is_identical_and_another_seed_differs(difficulty):
    a = generate_sleep_recording(2, hours=0.25, seed=3, difficulty=difficulty)
    b = generate_sleep_recording(2, hours=0.25, seed=3, difficulty=difficulty)
    c = generate_sleep_recording(2, hours=0.25, seed=4, difficulty=difficulty)
    np.testing.assert_array_equal(a.signals, b.signals)
    np.testing.assert_array_equal(a.epoch_labels, b.epoch_labels)
    assert not np.array_equal(a.signals, c.signals)


def test_a_subject_does_not_depend_on_how_many_there_are():
    four = synthetic_recordings("sleep", 4, 0.25, None, seed=5)
    eight = synthetic_recordings("sleep", 8, 0.25, None, seed=5)
    assert list(four) == [f"sub-{i:03d}_night-1" for i in range(4)] and len(eight) == 8
    np.testing.assert_array_equal(
        four["sub-003_night-1"]().signals, eight["sub-003_night-1"]().signals
    )


def test_sources_are_lazy_picklable_and_use_the_task_rate():
    sources = synthetic_recordings("seizure", 2, 0.2, None, seed=1)
    assert list(sources) == ["sub-000_day-1", "sub-001_day-1"]
    rec = pickle.loads(pickle.dumps(sources["sub-001_day-1"]))()
    assert rec.sfreq == 25.0 and rec.subject_id == "sub-001" and len(rec.events) >= 1
    assert synthetic_recordings("sleep", 1, 0.25, 128.0, seed=1)["sub-000_night-1"]().sfreq == 128.0


def test_unknown_task_names_the_parameter_and_the_choices():
    with pytest.raises(ValueError, match=r"dataset\.synthetic\.task.*'seizure', 'sleep'"):
        synthetic_recordings("eeg", 2, 1.0, None, seed=0)


def test_layout_units_and_labels_cover_the_recording(nights):
    rec = nights[1]
    assert rec.recording_id == "sub-001_night-1" and rec.subject_id == "sub-001"
    assert rec.channel_names == SLEEP_CHANNELS and rec.channel_types == ["eeg", "eeg", "eog", "emg"]
    assert rec.signals.dtype == np.float32 and rec.signals.shape == (4, int(2 * 3600 * SFREQ))
    assert rec.label_epoch_s == 30.0 and rec.events is None
    assert len(rec.epoch_labels) * 30 * SFREQ == rec.n_samples
    assert set(rec.epoch_labels) <= {"W", "N1", "N2", "N3", "REM"}
    assert {"W", "N2", "N3", "REM"} <= set(np.concatenate([r.epoch_labels for r in nights]))
    assert rec.epoch_labels[0] == "W"  # lights out: the night starts awake
    # µV scale: EEG of tens of µV
    assert 5 < np.median(np.abs(rec.signals[0])) < 100


@pytest.mark.parametrize("difficulty", ["realistic", "easy"])
def test_short_recordings_still_hold_wake_nrem_and_rem(difficulty):
    for i in range(6):
        labels = set(
            generate_sleep_recording(i, hours=0.5, seed=7, difficulty=difficulty).epoch_labels
        )
        assert "W" in labels and "REM" in labels and labels & {"N1", "N2", "N3"}


def test_hypnogram_has_ultradian_structure():
    stages = simulate_hypnogram(np.random.default_rng(0), n_epochs=960, cycle_min=90.0)  # 8 h
    first, last = stages[:320], stages[-320:]
    assert (first == N3).mean() > 2 * (last == N3).mean()  # N3 early
    assert (last == REM).mean() > 2 * (first == REM).mean()  # REM late
    rem_starts = np.flatnonzero((stages[1:] == REM) & (stages[:-1] != REM))
    assert len(rem_starts) >= 4  # one REM period per ~90-min cycle


def test_scorer_noise_only_touches_stage_changes_and_n1():
    true = simulate_hypnogram(np.random.default_rng(1), n_epochs=960, cycle_min=90.0)
    scored = score_hypnogram(np.random.default_rng(2), true, label_noise=0.4)
    near_change = np.zeros(len(true), dtype=bool)
    change = np.flatnonzero(true[1:] != true[:-1])
    near_change[change] = near_change[change + 1] = True
    differs = scored != true
    assert differs.any() and not (differs & ~near_change & (true != N1)).any()
    assert set(scored[differs & (true == N1) & ~near_change]) <= {W, 2}


def test_stage_physiology(nights):
    emg_rms = _by_stage(nights, lambda e: e[:, 3].std(axis=-1))
    assert (
        emg_rms["REM"] < 0.75 * emg_rms["N2"] < 0.75 * emg_rms["W"]
    )  # wake tone highest, REM atonia
    assert emg_rms["REM"] < 0.35 * emg_rms["W"]

    delta = _by_stage(nights, lambda e: _band_power(e[:, 0], 0.5, 2.0))
    assert delta["N3"] > 2 * delta["N2"] > 2 * delta["W"]

    alpha_pz = _by_stage(nights, lambda e: _band_power(e[:, 1], 8.0, 12.0))
    alpha_fpz = _by_stage(nights, lambda e: _band_power(e[:, 0], 8.0, 12.0))
    assert alpha_pz["W"] > 3 * alpha_pz["N3"] and alpha_pz["W"] > alpha_fpz["W"]  # occipital alpha

    sigma = _by_stage(
        nights, lambda e: _band_power(e[:, 0], 12.0, 15.0) / _band_power(e[:, 0], 4.0, 8.0)
    )
    assert sigma["N2"] > 1.5 * sigma["REM"]  # spindles

    theta = _by_stage(nights, lambda e: _band_power(e[:, 0], 4.0, 8.0))
    assert theta["REM"] > 2 * theta["W"]

    # N3 slow waves exceed 75 µV peak to peak
    n3 = np.concatenate([_epochs(r)[r.epoch_labels == "N3", 0] for r in nights])
    assert np.median(np.ptp(n3, axis=-1)) > 75


def test_artefacts_flat_dropouts_appear_somewhere(nights):
    stds = np.concatenate([_epochs(rec).std(axis=-1) for rec in nights])
    assert (stds < 0.01).any(), "no flat-line dropout in 6 h"
    assert (stds >= 0.01).mean() > 0.95


def test_synthesized_noise_has_the_requested_rms():
    rng = np.random.default_rng(0)
    n, freqs = 60_000, sn.bin_frequencies(SFREQ)
    times = sn.frame_centres_s(n, SFREQ)
    rms = np.where(times < 300, 5.0, 20.0)[:, None]  # a step in amplitude halfway
    x = sn.synthesize(
        sn.random_coefficients(rng, len(times), len(freqs)),
        sn.mix_amplitude(rms, sn.band(freqs, 4, 8)[None]),
        n,
    )
    assert x.std(where=np.arange(n) < 28_000) == pytest.approx(5.0, rel=0.1)
    assert x.std(where=np.arange(n) > 32_000) == pytest.approx(20.0, rel=0.1)
    f, psd = signal.welch(x, fs=SFREQ, nperseg=400)
    assert psd[(f >= 4) & (f <= 8)].sum() > 0.95 * psd.sum()


def test_too_short_or_too_slow_is_rejected():
    with pytest.raises(ValueError, match="hours_per_subject"):
        generate_sleep_recording(0, hours=0.01)
    with pytest.raises(ValueError, match="sfreq"):
        generate_sleep_recording(0, hours=1.0, sfreq=20.0)


@pytest.mark.parametrize(
    ("task", "hours", "sfreq"), [("sleep", 0.24, 128.0), ("seizure", 0.2013, 33.0)]
)
def test_the_header_tells_what_will_be_generated(task, hours, sfreq):
    (source,) = synthetic_recordings(task, 1, hours, sfreq, seed=1).values()
    recording = source()
    header = source.header  # checked before any recording is generated
    assert (header.n_samples, header.sfreq) == (recording.n_samples, recording.sfreq)
    assert list(header.channel_types) == recording.channel_types


def test_the_old_import_path_is_an_alias_of_the_package():
    from epochstack.signals import synthetic as old

    assert old.generate_sleep_recording is generate_sleep_recording
    assert old.synthetic_recordings is synthetic_recordings
