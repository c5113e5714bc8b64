"""Spectral features from one Welch PSD of all epochs and channels at once (``axis=-1``).

Band power is the rectangle-rule integral of the PSD over ``lo <= f < hi`` (units: signal
unit squared, e.g. uV^2), so adjacent bands add up exactly to their union.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import get_window

from epochstack.signals.features.config import FeaturePlan


def welch_psd(x: np.ndarray, sfreq: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """``freqs`` and ``psd (..., n_freqs)`` of ``x (..., n_times)``, the estimator of
    ``scipy.signal.welch(x, sfreq, nperseg=nperseg, axis=-1)``: Hann window, 50 % overlap,
    constant detrend, one-sided density.

    Written out because scipy 1.17's ``welch`` (through ``ShortTimeFFT``) transforms one segment
    position at a time and detrends slowly: 4-5x slower on ``(epochs, channels, times)`` batches.
    Here every segment of every epoch is one ``rfft`` call; tests check agreement with scipy.
    """
    step = nperseg - nperseg // 2
    segments = sliding_window_view(x, nperseg, axis=-1)[..., ::step, :]
    window = get_window("hann", nperseg).astype(x.dtype)
    spectrum = scipy.fft.rfft(segments * window, axis=-1, overwrite_x=True)
    # Constant detrend in the frequency domain: rfft((s - mean) * w) = rfft(s * w) - mean * rfft(w),
    # and rfft of the periodic Hann window is non-zero only in its first two bins.
    window_spectrum = scipy.fft.rfft(window)
    bins = np.flatnonzero(np.abs(window_spectrum) > 1e-6 * np.abs(window_spectrum[0]))
    spectrum[..., bins] -= segments.mean(axis=-1, keepdims=True) * window_spectrum[bins]
    power = np.abs(spectrum)
    np.square(power, out=power)
    psd = power.sum(axis=-2)
    psd *= 2.0 / (sfreq * np.sum(window**2) * segments.shape[-2])
    psd[..., 0] /= 2.0
    if nperseg % 2 == 0:
        psd[..., -1] /= 2.0
    return scipy.fft.rfftfreq(nperseg, 1.0 / sfreq), psd


def band_power(freqs: np.ndarray, psd: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Power of ``psd (..., n_freqs)`` in ``lo <= f < hi``."""
    mask = (freqs >= lo) & (freqs < hi)
    return psd[..., mask].sum(axis=-1) * (freqs[1] - freqs[0])


def _safe_ratio(num: np.ndarray, den: np.ndarray, floor: float) -> np.ndarray:
    return num / np.maximum(den, floor)


def _frequencies_at_fractions(freqs: np.ndarray, psd: np.ndarray, fractions: list[float]) -> list[np.ndarray]:
    """Lowest frequency below which each fraction of the power lies (median: 0.5, edge: 0.95)."""
    cumulative = np.cumsum(psd, axis=-1)
    total = cumulative[..., -1:]
    return [freqs[np.minimum((cumulative < f * total).sum(axis=-1), len(freqs) - 1)] for f in fractions]


def _aperiodic_slope(freqs: np.ndarray, psd: np.ndarray, floor: float) -> np.ndarray:
    """Least-squares slope of log10 PSD on log10 frequency (closed form, all epochs at once)."""
    keep = freqs > 0
    log_f = np.log10(freqs[keep])
    centred_f = log_f - log_f.mean()
    log_p = np.log10(np.maximum(psd[..., keep], floor))
    return (log_p @ centred_f) / (centred_f @ centred_f)


def spectral_features(x: np.ndarray, plan: FeaturePlan) -> dict[str, np.ndarray]:
    """Band powers (log10 absolute, relative), ratios, entropy, peak / median / edge frequency,
    aperiodic slope and line-noise ratio, per channel. ``x``: ``(n_epochs, n_channels, n_times)``."""
    config, floor = plan.config["spectral"], plan.config["log_floor"]
    freqs, psd = welch_psd(x, plan.sfreq, plan.nperseg)
    df = freqs[1] - freqs[0]
    out: dict[str, np.ndarray] = {}
    for c, channel in enumerate(plan.channels):
        if not channel.bands:
            continue
        prefix = f"{channel.name}_spectral"
        p = psd[:, c]
        lo = min(lo for lo, _ in channel.bands.values())
        hi = max(hi for _, hi in channel.bands.values())
        broad = (freqs >= lo) & (freqs < hi)
        f_broad, p_broad = freqs[broad], p[:, broad]
        total = p_broad.sum(axis=-1) * df
        powers = {name: band_power(freqs, p, b_lo, b_hi) for name, (b_lo, b_hi) in channel.bands.items()}
        for name, power in powers.items():
            out[f"{prefix}_logpow_{name}"] = np.log10(np.maximum(power, floor))
            out[f"{prefix}_relpow_{name}"] = _safe_ratio(power, total, floor)
        out[f"{prefix}_logpow_total"] = np.log10(np.maximum(total, floor))
        for num, den in config["ratios"]:
            if num in powers and den in powers:
                out[f"{prefix}_ratio_{num}_{den}"] = _safe_ratio(powers[num], powers[den], floor)
        share = p_broad / np.maximum(p_broad.sum(axis=-1, keepdims=True), floor)
        entropy = -np.sum(share * np.log(np.where(share > 0, share, 1.0)), axis=-1)
        out[f"{prefix}_entropy"] = entropy / np.log(max(f_broad.size, 2))
        out[f"{prefix}_peak_freq"] = f_broad[np.argmax(p_broad, axis=-1)]
        edge = config["edge_fraction"]
        median, edge_freq = _frequencies_at_fractions(f_broad, p_broad, [0.5, edge])
        out[f"{prefix}_median_freq"] = median
        out[f"{prefix}_edge_freq_{round(edge * 100)}"] = edge_freq
        out[f"{prefix}_aperiodic_slope"] = _aperiodic_slope(f_broad, p_broad, floor)
        half_width = config["line_noise_half_width_hz"]
        for line_hz in config["line_noise_hz"]:
            if line_hz + half_width < plan.nyquist:
                line = band_power(freqs, p, line_hz - half_width, line_hz + half_width)
                above_lo = band_power(freqs, p, lo, plan.nyquist + df)
                out[f"{prefix}_line_noise_ratio_{line_hz:g}hz"] = _safe_ratio(line, above_lo, floor)
    return out
