"""Spectral features from one Welch PSD of all epochs and channels of a chunk at once.

Band power is the rectangle-rule integral of the PSD over ``lo <= f < hi`` (units: signal
unit squared, e.g. uV^2), so adjacent bands add up exactly to their union.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
from scipy.signal import get_window

from epochstack.signals.features.config import ChannelPlan, FeaturePlan
from epochstack.signals.features.kernels import log_positive
from epochstack.signals.features.kernels_spectral import band_rows, hann_segments, mean_power

MEDIAN_FRACTION = 0.5


def welch_psd(x: np.ndarray, sfreq: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """``freqs`` and float64 ``psd (..., n_freqs)`` of ``x (..., n_times)``, the estimator of
    ``scipy.signal.welch(x, sfreq, nperseg=nperseg, axis=-1)``: Hann window, 50 % overlap,
    constant detrend, one-sided density.

    Written out because scipy 1.17's ``welch`` (through ``ShortTimeFFT``) transforms one segment
    position at a time and detrends slowly: 4-5x slower on ``(epochs, channels, times)`` batches.
    Here numba kernels cut and window the segments and sum their powers, and every segment of
    every epoch goes through one ``scipy.fft.rfft`` call; tests check agreement with scipy.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating) or x.dtype.itemsize < 4:
        x = x.astype(np.float64)
    rows = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    step = nperseg - nperseg // 2
    n_segments = (rows.shape[1] - nperseg) // step + 1
    window = _hann(nperseg, rows.dtype)
    segments = np.empty((rows.shape[0], n_segments, nperseg), dtype=rows.dtype)
    hann_segments(rows, window, step, segments)
    spectra = scipy.fft.rfft(segments, axis=-1, overwrite_x=True)
    psd = np.empty((rows.shape[0], spectra.shape[-1]))
    scale = 2.0 / (sfreq * float(np.sum(window.astype(np.float64) ** 2)) * n_segments)
    mean_power(spectra, scale, nperseg % 2 == 0, psd)
    return _frequencies(sfreq, nperseg), psd.reshape(*x.shape[:-1], -1)


@lru_cache(maxsize=16)
def _hann(nperseg: int, dtype: np.dtype) -> np.ndarray:
    return get_window("hann", nperseg).astype(dtype)


@lru_cache(maxsize=16)
def _frequencies(sfreq: float, nperseg: int) -> np.ndarray:
    return scipy.fft.rfftfreq(nperseg, 1.0 / sfreq)


def band_bins(freqs: np.ndarray, lo: float, hi: float) -> tuple[int, int]:
    """``[first, stop)``: the bins of ``freqs`` (ascending) with ``lo <= f < hi``."""
    return int(np.searchsorted(freqs, lo, "left")), int(np.searchsorted(freqs, hi, "left"))


@lru_cache(maxsize=64)
def _bin_ranges(sfreq: float, nperseg: int, ranges: tuple[tuple[float, float], ...]) -> np.ndarray:
    """``(len(ranges), 2)`` bin ranges of ``[lo, hi)`` frequency ranges (cached: every chunk asks)."""
    freqs = _frequencies(sfreq, nperseg)
    return np.array([band_bins(freqs, lo, hi) for lo, hi in ranges], dtype=np.int64).reshape(-1, 2)


def _line_frequencies(plan: FeaturePlan) -> list[float]:
    """Line-noise frequencies whose +- half width lies below Nyquist (none when the rate is unknown)."""
    spectral = plan.config["spectral"]
    if not plan.sfreq_known:
        return []
    return [
        f
        for f in spectral["line_noise_hz"]
        if f + spectral["line_noise_half_width_hz"] < plan.nyquist
    ]


def _ratios(channel: ChannelPlan, plan: FeaturePlan) -> list[tuple[str, str]]:
    return [
        (num, den)
        for num, den in plan.config["spectral"]["ratios"]
        if num in channel.bands and den in channel.bands
    ]


def spectral_columns(channel: ChannelPlan, plan: FeaturePlan) -> list[str]:
    """Column names of one channel's spectral features, in computation order (none without bands)."""
    if not channel.bands:
        return []
    prefix = f"{channel.name}_spectral"
    names = [f"{kind}_{band}" for band in channel.bands for kind in ("logpow", "relpow")]
    names += ["logpow_total", *(f"ratio_{num}_{den}" for num, den in _ratios(channel, plan))]
    names += [
        "entropy",
        "peak_freq",
        "median_freq",
        f"edge_freq_{round(plan.config['spectral']['edge_fraction'] * 100)}",
    ]
    names += ["aperiodic_slope", *(f"line_noise_ratio_{f:g}hz" for f in _line_frequencies(plan))]
    return [f"{prefix}_{name}" for name in names]


def spectral_features(x: np.ndarray, plan: FeaturePlan) -> dict[int, np.ndarray]:
    """Per channel index with bands, a ``(n_epochs, len(spectral_columns(channel)))`` block:
    band powers (log10 absolute, relative), ratios, entropy, peak / median / edge frequency,
    aperiodic slope and line-noise ratio. ``x``: ``(n_epochs, n_channels, n_times)``."""
    spectral = plan.config["spectral"]
    freqs, psd = welch_psd(x, plan.sfreq, plan.nperseg)
    log_psd = np.empty_like(psd)
    log_positive(psd, log_psd, np.e)
    half_width = spectral["line_noise_half_width_hz"]
    lines = _bin_ranges(
        plan.sfreq,
        plan.nperseg,
        tuple((f - half_width, f + half_width) for f in _line_frequencies(plan)),
    )
    fractions = np.array([MEDIAN_FRACTION, spectral["edge_fraction"]])
    # Channels of one type share their bands: one kernel call per type.
    groups: dict[str, list[int]] = {}
    for c, channel in enumerate(plan.channels):
        if channel.bands:
            groups.setdefault(channel.channel_type, []).append(c)
    blocks: dict[int, np.ndarray] = {}
    for members in groups.values():
        channel = plan.channels[members[0]]
        names, edges = list(channel.bands), tuple(channel.bands.values())
        bands = _bin_ranges(plan.sfreq, plan.nperseg, edges)
        broad = _bin_ranges(
            plan.sfreq, plan.nperseg, ((min(lo for lo, _ in edges), max(hi for _, hi in edges)),)
        )[0]
        ratios = np.array(
            [(names.index(num), names.index(den)) for num, den in _ratios(channel, plan)],
            dtype=np.int64,
        ).reshape(-1, 2)
        rows = np.ascontiguousarray(psd[:, members]).reshape(-1, psd.shape[-1])
        log_rows = np.ascontiguousarray(log_psd[:, members]).reshape(rows.shape)
        # As many columns as spectral_columns(channel, plan) names (extract_with_plan checks).
        out = np.empty((rows.shape[0], 2 * len(bands) + len(ratios) + 6 + len(lines)))
        band_rows(
            rows,
            log_rows,
            freqs,
            bands,
            broad,
            ratios,
            lines,
            fractions,
            float(plan.config["log_floor"]),
            out,
        )
        out = out.reshape(x.shape[0], len(members), -1)
        for k, c in enumerate(members):
            blocks[c] = out[:, k]
    return blocks
