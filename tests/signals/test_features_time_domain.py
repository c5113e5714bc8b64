import numpy as np
import pytest

from epochstack.signals.features import extract_features
from epochstack.signals.features.time_domain import hjorth, permutation_entropy


def test_hjorth_of_white_noise_has_known_values():
    noise = np.random.default_rng(0).standard_normal((20, 1, 20000))
    mobility, complexity = hjorth(noise)
    # var(diff) = 2 var(x), var(diff2) = 6 var(x): mobility sqrt(2), complexity sqrt(3/2).
    assert mobility.mean() == pytest.approx(np.sqrt(2), rel=0.01)
    assert complexity.mean() == pytest.approx(np.sqrt(1.5), rel=0.01)


def test_permutation_entropy_of_noise_is_one_and_of_a_ramp_is_zero():
    noise = np.random.default_rng(1).standard_normal((4, 20000))
    assert permutation_entropy(noise) == pytest.approx(np.ones(4), abs=0.01)
    assert permutation_entropy(np.arange(100.0)[None]) == pytest.approx([0.0])
    assert permutation_entropy(noise, order=4, delay=2) == pytest.approx(np.ones(4), abs=0.01)


def test_statistics_zero_crossings_and_clipping_of_a_sine():
    sfreq, t = 100.0, np.arange(3000) / 100.0
    sine = 10 * np.sin(2 * np.pi * 2.0 * t)
    clipped = np.clip(sine, -5, 5)
    features = extract_features(np.stack([sine, clipped])[:, None], sfreq, ["eeg"], ["eeg"], {})
    assert features.loc[0, "eeg_time_std"] == pytest.approx(10 / np.sqrt(2), rel=1e-3)
    assert features.loc[0, "eeg_time_zero_crossing_rate"] == pytest.approx(4.0, abs=0.05)  # 2 Hz
    assert features.loc[0, "eeg_time_kurtosis"] == pytest.approx(-1.5, abs=0.01)
    assert features.loc[0, "eeg_time_clipped_fraction"] < 0.01
    assert features.loc[1, "eeg_time_clipped_fraction"] > 0.5
    assert features.loc[0, "eeg_time_iqr"] == pytest.approx(np.subtract(*np.percentile(sine, [75, 25])), rel=1e-6)


def test_heart_rate_and_accelerometer_features():
    sfreq, t = 25.0, np.arange(750) / 25.0
    hr = 60 + 2 * t  # +2 bpm per second = 120 bpm per minute
    axes = np.stack([np.sin(2 * np.pi * 4 * t), np.zeros_like(t), np.ones_like(t)])
    epochs = np.concatenate([axes, hr[None]])[None].repeat(2, axis=0).astype(np.float32)
    features = extract_features(epochs, sfreq, ["ACC x", "ACC y", "ACC z", "HR"], ["acc", "acc", "acc", "hr"], {})
    assert features.loc[0, "hr_time_mean"] == pytest.approx(hr.mean(), rel=1e-5)
    assert features.loc[0, "hr_time_slope"] == pytest.approx(120.0, rel=1e-4)
    assert not any(c.startswith("hr_spectral") or c.startswith("hr_wavelet") for c in features)
    assert features.loc[0, "acc_magnitude_time_activity_count"] > 0
    assert features.loc[0, "acc_x_spectral_peak_freq"] == pytest.approx(4.0)
    assert "acc_magnitude_spectral_logpow_seizure_main" in features


def test_flat_and_zero_epochs_give_finite_features():
    epochs = np.zeros((3, 3, 3000), dtype=np.float32)
    epochs[1] = 7.0
    epochs[2, 0] = np.random.default_rng(2).standard_normal(3000)
    features = extract_features(epochs, 100.0, ["EEG", "EOG", "EMG"], ["eeg", "eog", "emg"], {})
    assert np.isfinite(features.to_numpy()).all()
    assert features.attrs["n_nonfinite_replaced"] == 0
    assert features.loc[0, "emg_time_logrms"] == pytest.approx(-12.0)
