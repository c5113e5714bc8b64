import numpy as np
import pytest
from scipy.signal import welch

from epochstack.signals.features import extract_features
from epochstack.signals.features.config import build_plan
from epochstack.signals.features.spectral import spectral_columns, welch_psd

SFREQ = 100.0


def band_power(freqs: np.ndarray, psd: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Rectangle-rule power of ``psd`` over ``lo <= f < hi`` (the reference definition)."""
    mask = (freqs >= lo) & (freqs < hi)
    return psd[..., mask].sum(axis=-1) * (freqs[1] - freqs[0])


def sine(
    freq: float, n_epochs: int = 2, n_times: int = 3000, amplitude: float = 10.0
) -> np.ndarray:
    t = np.arange(n_times) / SFREQ
    return np.tile(amplitude * np.sin(2 * np.pi * freq * t), (n_epochs, 1, 1)).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_band_powers_agree_with_scipy_welch_on_single_epochs(dtype):
    rng = np.random.default_rng(0)
    epochs = (rng.standard_normal((4, 2, 3000)) * 20 + 5).astype(dtype)
    features = extract_features(epochs, SFREQ, ["EEG Fpz-Cz", "EOG"], ["eeg", "eog"], {})
    for i, epoch in enumerate(epochs):
        freqs, psd = welch(epoch[0], SFREQ, nperseg=400, noverlap=200)
        for band, (lo, hi) in {
            "delta": (0.5, 4.0),
            "alpha": (8.0, 12.0),
            "gamma": (30.0, 45.0),
        }.items():
            expected = band_power(freqs, psd.astype(np.float64), lo, hi)
            got = 10 ** features.loc[i, f"eeg_fpz_cz_spectral_logpow_{band}"]
            assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(("n_times", "nperseg"), [(101, 33), (16, 16), (7680, 1024), (3000, 400)])
def test_vectorised_welch_matches_scipy(n_times, nperseg):
    epochs = np.random.default_rng(1).standard_normal((3, 2, n_times)) + 4
    freqs, psd = welch_psd(epochs, 10.0, nperseg)
    ref_freqs, ref_psd = welch(epochs, 10.0, nperseg=nperseg, axis=-1)
    np.testing.assert_allclose(freqs, ref_freqs)
    np.testing.assert_allclose(psd, ref_psd, rtol=1e-10)
    _, psd32 = welch_psd(epochs.astype(np.float32), 10.0, nperseg)
    np.testing.assert_allclose(psd32, ref_psd, rtol=2e-4)


def test_spectral_summaries_equal_their_definitions_on_the_welch_psd():
    rng = np.random.default_rng(6)
    epochs = np.cumsum(rng.standard_normal((5, 1, 3000)), axis=-1) + 3 * np.sin(
        np.arange(3000) * 0.6
    )
    features = extract_features(epochs, SFREQ, ["eeg"], ["eeg"], {"families": ["spectral"]})
    freqs, psd = welch(epochs[:, 0], SFREQ, nperseg=400, axis=-1)
    broad = (freqs >= 0.5) & (freqs < 45.0)
    f, p = freqs[broad], psd[:, broad]
    share = p / p.sum(axis=-1, keepdims=True)
    cumulative = np.cumsum(p, axis=-1)
    log_f = np.log10(f) - np.log10(f).mean()
    expected = {
        "eeg_spectral_logpow_total": np.log10(band_power(freqs, psd, 0.5, 45.0)),
        "eeg_spectral_relpow_theta": band_power(freqs, psd, 4, 8)
        / band_power(freqs, psd, 0.5, 45.0),
        "eeg_spectral_ratio_theta_delta": band_power(freqs, psd, 4, 8)
        / band_power(freqs, psd, 0.5, 4),
        "eeg_spectral_entropy": -(share * np.log(share)).sum(axis=-1) / np.log(broad.sum()),
        "eeg_spectral_peak_freq": f[np.argmax(p, axis=-1)],
        "eeg_spectral_median_freq": f[(cumulative < 0.5 * cumulative[:, -1:]).sum(axis=-1)],
        "eeg_spectral_edge_freq_95": f[(cumulative < 0.95 * cumulative[:, -1:]).sum(axis=-1)],
        "eeg_spectral_aperiodic_slope": (np.log10(p) @ log_f) / (log_f @ log_f),
    }
    for column, values in expected.items():
        np.testing.assert_allclose(features[column], values, rtol=1e-9, err_msg=column)


def test_ten_hz_sine_puts_its_power_in_alpha_and_peaks_at_ten_hz():
    features = extract_features(sine(10.0), SFREQ, ["eeg"], ["eeg"], {})
    assert (features["eeg_spectral_relpow_alpha"] > 0.95).all()
    assert (features["eeg_spectral_relpow_delta"] < 0.01).all()
    np.testing.assert_allclose(features["eeg_spectral_peak_freq"], 10.0)
    np.testing.assert_allclose(features["eeg_spectral_median_freq"], 10.0, atol=0.25)
    # A pure tone concentrates power in a few bins: low spectral entropy.
    assert (features["eeg_spectral_entropy"] < 0.2).all()


def test_aperiodic_slope_of_pink_noise_is_minus_one():
    rng = np.random.default_rng(2)
    spectrum = np.fft.rfft(rng.standard_normal((8, 1, 3000)), axis=-1)
    freqs = np.fft.rfftfreq(3000, 1 / SFREQ)
    spectrum[..., 1:] /= np.sqrt(freqs[1:])  # power ~ 1/f
    spectrum[..., 0] = 0
    pink = np.fft.irfft(spectrum, n=3000, axis=-1)
    features = extract_features(pink, SFREQ, ["eeg"], ["eeg"], {})
    assert features["eeg_spectral_aperiodic_slope"].mean() == pytest.approx(-1.0, abs=0.1)


def test_bands_above_nyquist_are_dropped_and_logged(caplog):
    epochs = np.random.default_rng(3).standard_normal((2, 1, 300)).astype(np.float32)
    with caplog.at_level("INFO"):
        features = extract_features(epochs, 10.0, ["x"], ["acc"], {})  # Nyquist 5 Hz
    assert "x_spectral_logpow_osd_roi" not in features  # 3-8 Hz
    assert "x_spectral_logpow_1_3hz" in features
    assert "dropped bands" in caplog.text


def test_misc_bands_are_fractions_of_nyquist_at_one_hertz():
    epochs = np.random.default_rng(4).standard_normal((3, 2, 100)).astype(np.float32)
    features = extract_features(epochs, 1.0, ["dim_0", "dim_1"], ["misc", "misc"], {})
    relpow = features.filter(like="dim_0_spectral_relpow_")
    assert relpow.shape[1] == 6
    # Adjacent bands tile [0, Nyquist): their relative powers add up to 1.
    np.testing.assert_allclose(relpow.sum(axis=1), 1.0, rtol=1e-5)
    assert not any("line_noise" in c for c in features)


def test_line_noise_ratio_detects_50_hz_only_below_nyquist():
    rng = np.random.default_rng(5)
    t = np.arange(5000) / 200.0
    clean = rng.standard_normal((2, 1, 5000))
    noisy = clean + 5 * np.sin(2 * np.pi * 50 * t)
    features = extract_features(np.concatenate([clean, noisy]), 200.0, ["eeg"], ["eeg"], {})
    ratio = features["eeg_spectral_line_noise_ratio_50hz"]
    assert ratio[2:].min() > 10 * ratio[:2].max()
    at_100_hz = extract_features(clean[..., :3000], SFREQ, ["eeg"], ["eeg"], {})
    assert not any("line_noise" in c for c in at_100_hz)


def test_without_a_known_rate_every_channel_takes_fraction_of_nyquist_bands_and_no_line_noise():
    plan = build_plan(250.0, 500, ["EEG C3", "EMG"], ["eeg", "emg"], {}, sfreq_known=False)
    assert plan.sfreq == 1.0 and plan.nperseg == 64  # no Hz-based window: min_nperseg samples
    for channel in plan.channels:
        assert list(channel.bands) == ["f00_05", "f05_10", "f10_20", "f20_40", "f40_70", "f70_100"]
        assert channel.bands["f70_100"] == pytest.approx((0.35, 0.5))  # cycles per sample
        columns = spectral_columns(channel, plan)
        assert not any("line_noise" in c or "delta" in c for c in columns)
