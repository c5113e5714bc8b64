import numpy as np
import pytest

from epochstack.signals.features import extract_features


def test_sub_band_energies_add_up_to_the_signal_energy():
    epochs = np.random.default_rng(0).standard_normal((3, 2, 1024)) * 5
    features = extract_features(
        epochs, 100.0, ["a", "b"], ["eeg", "eeg"], {"families": ["wavelet"]}
    )
    energy = features.filter(regex=r"^a_wavelet_energy_").sum(axis=1)
    np.testing.assert_allclose(energy, np.mean(epochs[:, 0] ** 2, axis=-1), rtol=1e-10)
    np.testing.assert_allclose(features.filter(regex=r"^b_wavelet_relenergy_").sum(axis=1), 1.0)
    assert list(features.filter(regex=r"^a_wavelet_std_").columns) == [
        f"a_wavelet_std_{n}" for n in ("a5", "d5", "d4", "d3", "d2", "d1")
    ]


def test_fast_oscillation_lands_in_the_finest_detail_level():
    t = np.arange(1024) / 100.0
    fast = np.sin(2 * np.pi * 40 * t)[None, None]  # 25-50 Hz is d1 at 100 Hz
    features = extract_features(fast, 100.0, ["eeg"], ["eeg"], {"families": ["wavelet"]})
    assert features.loc[0, "eeg_wavelet_relenergy_d1"] > 0.8


def test_level_is_capped_for_short_epochs():
    epochs = np.random.default_rng(1).standard_normal((2, 1, 100))
    features = extract_features(epochs, 1.0, ["dim_0"], ["misc"], {"families": ["wavelet"]})
    assert "dim_0_wavelet_energy_a3" in features
    assert not any(c.endswith("d4") for c in features)


def test_feature_subset_and_families_follow_the_config():
    epochs = np.random.default_rng(2).standard_normal((2, 1, 1024))
    features = extract_features(
        epochs, 100.0, ["eeg"], ["eeg"], {"select": ["*_wavelet_energy_*", "*_time_std"]}
    )
    assert set(features.columns) == {"eeg_time_std"} | {
        f"eeg_wavelet_energy_{n}" for n in ("a5", "d5", "d4", "d3", "d2", "d1")
    }
    with pytest.raises(ValueError, match="unknown"):
        extract_features(epochs, 100.0, ["eeg"], ["eeg"], {"families": ["fractal"]})


def test_sub_band_statistics_equal_numpy_on_pywavelets_coefficients():
    import pywt

    epochs = (np.random.default_rng(3).standard_normal((3, 1, 3000)) * 20 + 7).astype(np.float32)
    features = extract_features(epochs, 100.0, ["eeg"], ["eeg"], {"families": ["wavelet"]})
    coeffs = pywt.wavedec(
        epochs[:, 0].astype(np.float64), "db4", mode="periodization", level=5, axis=-1
    )
    for name, c in zip(["a5", "d5", "d4", "d3", "d2", "d1"], coeffs, strict=True):
        np.testing.assert_allclose(
            features[f"eeg_wavelet_energy_{name}"], np.sum(c**2, axis=-1) / 3000, rtol=1e-5
        )
        np.testing.assert_allclose(
            features[f"eeg_wavelet_meanabs_{name}"], np.abs(c).mean(axis=-1), rtol=1e-5
        )
        np.testing.assert_allclose(features[f"eeg_wavelet_std_{name}"], c.std(axis=-1), rtol=1e-5)
