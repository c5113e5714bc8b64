import math
from collections import Counter

import numpy as np
import pytest
from scipy.stats import kurtosis, skew

from epochstack.errors import ParameterError
from epochstack.signals.features import extract_features
from epochstack.signals.features.time_domain import row_statistics


def reference_permutation_entropy(row: np.ndarray, order: int, delay: int) -> float:
    """Textbook definition: the ordinal pattern of each window is its argsort (stable, so ties
    keep their order, as comparing with ``>``)."""
    windows = [
        row[t : t + (order - 1) * delay + 1 : delay] for t in range(len(row) - (order - 1) * delay)
    ]
    counts = Counter(tuple(np.argsort(w, kind="stable")) for w in windows)
    shares = np.array(list(counts.values())) / len(windows)
    return float(-(shares * np.log(shares)).sum() / math.log(math.factorial(order)))


def reference_statistics(row: np.ndarray) -> dict[str, float]:
    """Plain numpy / scipy definitions, in float64."""
    x = row.astype(np.float64)
    q25, q75 = np.percentile(x, [25, 75])
    dx, ddx = np.diff(x), np.diff(x, 2)
    negative = np.signbit(x - x.mean())
    return {
        "mean": x.mean(),
        "std": x.std(),
        "iqr": q75 - q25,
        "skewness": skew(x),
        "kurtosis": kurtosis(x),  # population moments, excess kurtosis
        "clipped_fraction": min(np.sum(x == x.min()) + np.sum(x == x.max()), len(x)) / len(x),
        "hjorth_mobility": np.sqrt(dx.var() / x.var()),
        "hjorth_complexity": np.sqrt(ddx.var() / dx.var()) / np.sqrt(dx.var() / x.var()),
        "mean_abs_diff": np.abs(dx).mean(),
        "zero_crossings": np.sum(negative[1:] != negative[:-1]),
        "mean_square": np.mean(x**2),
        "mean_abs_deviation": np.abs(x - x.mean()).mean(),
    }


@pytest.mark.parametrize("n_times", [16, 17, 50, 3000, 7680])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_statistics_equal_plain_numpy_definitions(n_times, dtype):
    rng = np.random.default_rng(n_times)
    rows = np.concatenate(
        [
            rng.standard_normal((4, n_times)) * 20 + 3,
            np.cumsum(rng.standard_normal((2, n_times)), axis=-1),  # smooth, drifting
            np.round(rng.standard_cauchy((2, n_times)), 1),  # heavy tails and ties
            rng.integers(0, 4, (2, n_times)).astype(float),  # few distinct levels
            1e4 + rng.standard_normal((2, n_times)),  # large offset
        ]
    ).astype(dtype)
    stats = row_statistics(rows)
    for i, row in enumerate(rows):
        expected = reference_statistics(row)
        scale = np.abs(row.astype(np.float64)).max()
        for name, value in expected.items():
            # Sums run in float64 whatever the input: float32 rows are exact too.
            assert stats[name][i] == pytest.approx(value, rel=1e-9, abs=1e-9 * scale), (name, i)
        assert stats["permutation_entropy"][i] == pytest.approx(
            reference_permutation_entropy(row, 3, 1), abs=1e-12
        )


@pytest.mark.parametrize(("order", "delay"), [(2, 1), (4, 2), (5, 1), (7, 3)])
def test_permutation_entropy_of_any_order_equals_the_reference(order, delay):
    rows = np.round(np.random.default_rng(order).standard_normal((3, 2000)), 1)  # ties included
    values = row_statistics(rows, order, delay)["permutation_entropy"]
    for row, value in zip(rows, values, strict=True):
        assert value == pytest.approx(reference_permutation_entropy(row, order, delay), abs=1e-12)


def test_hjorth_of_white_noise_has_known_values():
    stats = row_statistics(np.random.default_rng(0).standard_normal((20, 20000)))
    # var(diff) = 2 var(x), var(diff2) = 6 var(x): mobility sqrt(2), complexity sqrt(3/2).
    assert stats["hjorth_mobility"].mean() == pytest.approx(np.sqrt(2), rel=0.01)
    assert stats["hjorth_complexity"].mean() == pytest.approx(np.sqrt(1.5), rel=0.01)


def test_permutation_entropy_of_noise_is_one_and_of_a_ramp_is_zero():
    noise = np.random.default_rng(1).standard_normal((4, 20000))
    assert row_statistics(noise)["permutation_entropy"] == pytest.approx(np.ones(4), abs=0.01)
    assert row_statistics(np.arange(100.0)[None])["permutation_entropy"] == pytest.approx([0.0])
    assert row_statistics(noise, order=4, delay=2)["permutation_entropy"] == pytest.approx(
        np.ones(4), abs=0.01
    )


def test_permutation_order_outside_the_supported_range_is_a_parameter_error():
    epochs = np.random.default_rng(2).standard_normal((2, 1, 300))
    with pytest.raises(ParameterError, match="features.time_domain.permutation_order"):
        extract_features(epochs, 100.0, ["eeg"], ["eeg"], {"time_domain": {"permutation_order": 8}})


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
    assert features.loc[0, "eeg_time_iqr"] == pytest.approx(
        np.subtract(*np.percentile(sine, [75, 25])), rel=1e-9
    )
    assert features.loc[0, "eeg_time_line_length"] == pytest.approx(
        np.abs(np.diff(sine)).mean() * sfreq, rel=1e-9
    )


def test_heart_rate_and_accelerometer_features():
    sfreq, t = 25.0, np.arange(750) / 25.0
    hr = 60 + 2 * t  # +2 bpm per second = 120 bpm per minute
    axes = np.stack([np.sin(2 * np.pi * 4 * t), np.zeros_like(t), np.ones_like(t)])
    epochs = np.concatenate([axes, hr[None]])[None].repeat(2, axis=0).astype(np.float32)
    features = extract_features(
        epochs, sfreq, ["ACC x", "ACC y", "ACC z", "HR"], ["acc", "acc", "acc", "hr"], {}
    )
    assert features.loc[0, "hr_time_mean"] == pytest.approx(hr.mean(), rel=1e-5)
    assert features.loc[0, "hr_time_slope"] == pytest.approx(120.0, rel=1e-4)
    assert not any(c.startswith("hr_spectral") or c.startswith("hr_wavelet") for c in features)
    magnitude = np.sqrt(np.sum(axes.astype(np.float32) ** 2, axis=0))
    expected_count = np.abs(magnitude - magnitude.mean()).sum() / sfreq
    assert features.loc[0, "acc_magnitude_time_activity_count"] == pytest.approx(
        expected_count, rel=1e-5
    )
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
    assert features.loc[1, "eog_spectral_logpow_total"] == pytest.approx(
        -12.0
    )  # a constant has no power


def test_a_missing_sample_makes_its_epoch_and_channel_non_finite_and_is_counted():
    epochs = np.random.default_rng(3).standard_normal((2, 2, 3000)).astype(np.float32)
    epochs[1, 0, 100] = np.nan
    features = extract_features(
        epochs, 100.0, ["EEG", "EMG"], ["eeg", "emg"], {"families": ["time_domain"]}
    )
    eeg = [c for c in features if c.startswith("eeg_")]
    assert features.attrs["n_nonfinite_replaced"] == len(eeg)
    assert (features.loc[1, eeg] == 0).all() and (features.loc[0, eeg] != 0).any()
    assert (features.filter(like="emg_") != 0).any(axis=None)
