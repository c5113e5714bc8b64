"""Numba kernels of the spectral and wavelet features (:mod:`epochstack.signals.features.kernels`):
Welch's windowed segments and mean power, the band features of a PSD, wavelet coefficient sums.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from epochstack.signals.features.kernels import FASTMATH, JIT


@njit(**JIT, fastmath=FASTMATH)
def _sum(row):
    total = 0.0
    for i in range(row.shape[0]):
        total += row[i]
    return total


@njit(**JIT, fastmath=FASTMATH)
def coefficient_rows(c, out):
    """Per row of wavelet coefficients ``c (rows, n)``: sum of squares, mean |c| and standard
    deviation into ``out (rows, 3)``."""
    n = c.shape[1]
    for r in range(c.shape[0]):
        row = c[r]
        total = _sum(row)
        mean = total / n
        squares = spread = absolute = 0.0
        for i in range(n):
            v = np.float64(row[i])
            squares += v * v
            absolute += abs(v)
            spread += (v - mean) * (v - mean)
        out[r, 0] = squares
        out[r, 1] = absolute / n
        out[r, 2] = math.sqrt(spread / n)


@njit(**JIT, fastmath=FASTMATH)
def hann_segments(x, window, step, out):
    """Welch's segments of every row, mean removed (constant detrend) and windowed.

    ``x (rows, n)`` -> ``out (rows, n_segments, nperseg)``, same dtype as ``x``.
    """
    nperseg = window.shape[0]
    for r in range(x.shape[0]):
        for s in range(out.shape[1]):
            segment = x[r, s * step : s * step + nperseg]
            mean = _sum(segment) / nperseg
            for i in range(nperseg):
                out[r, s, i] = (segment[i] - mean) * window[i]


@njit(**JIT, fastmath=FASTMATH)
def mean_power(spectra, scale, halve_last, out):
    """One-sided Welch density: ``scale`` x the sum over segments of |X|^2, with the DC bin (and
    the last one when ``halve_last``: the Nyquist bin of an even segment length) halved.
    ``spectra (rows, n_segments, n_freqs)`` -> ``out (rows, n_freqs)``."""
    n_freqs = spectra.shape[2]
    for r in range(spectra.shape[0]):
        out[r, :] = 0.0
        for s in range(spectra.shape[1]):
            for f in range(n_freqs):
                z = spectra[r, s, f]
                out[r, f] += np.float64(z.real) * z.real + np.float64(z.imag) * z.imag
        for f in range(n_freqs):
            out[r, f] *= scale
        out[r, 0] *= 0.5
        if halve_last:
            out[r, n_freqs - 1] *= 0.5


@njit(**JIT, fastmath=FASTMATH)
def _centred_log10(freqs, first, n):
    """``log10`` of ``freqs[first : first + n]`` minus their mean, and their sum of squares."""
    log_f = np.empty(max(n, 0))
    for i in range(n):
        log_f[i] = math.log10(freqs[first + i])
    if n > 0:
        log_f -= log_f.mean()
    return log_f, np.sum(log_f * log_f)


@njit(**JIT, fastmath=FASTMATH)
def band_rows(psd, log_psd, freqs, bands, broad, ratios, lines, fractions, floor, out):
    """Spectral features of each PSD row, in the column order of ``spectral.spectral_columns``.

    ``log_psd``: natural log of ``psd`` where positive (numpy's vectorised log is several times
    faster than a scalar one per bin). ``bands (n_bands, 2)``, ``broad (2,)`` and
    ``lines (n_lines, 2)`` are ``[first, stop)`` bin ranges; ``ratios (n_ratios, 2)`` index
    ``bands``; ``fractions``: the median and edge shares. Band power is the rectangle-rule
    integral (sum of bins x bin width).
    """
    df = freqs[1] - freqs[0]
    log_floor = math.log(floor)
    lo, hi = broad[0], broad[1]
    n_broad = hi - lo
    # Aperiodic slope: least squares of log10 PSD on centred log10 f, over broadband bins f > 0.
    first_positive = lo if freqs[lo] > 0.0 else lo + 1
    n_log = hi - first_positive
    log_f, log_f_ss = _centred_log10(freqs, first_positive, n_log)
    n_bands = bands.shape[0]
    cumulative = np.empty(n_broad)
    powers = np.empty(n_bands)
    for r in range(psd.shape[0]):
        p = psd[r]
        running = 0.0
        peak = lo
        for i in range(n_broad):
            running += p[lo + i]
            cumulative[i] = running
            if p[lo + i] > p[peak]:
                peak = lo + i
        broad_sum = running
        total = broad_sum * df
        col = 0
        for b in range(n_bands):
            power = 0.0
            for i in range(bands[b, 0], bands[b, 1]):
                power += p[i]
            power *= df
            powers[b] = power
            out[r, col] = math.log10(max(power, floor))
            out[r, col + 1] = power / max(total, floor)
            col += 2
        out[r, col] = math.log10(max(total, floor))
        col += 1
        for k in range(ratios.shape[0]):
            out[r, col] = powers[ratios[k, 0]] / max(powers[ratios[k, 1]], floor)
            col += 1
        # Shannon entropy of the shares p / norm: (sum p ln(norm) - sum p ln p) / norm.
        p_log_p = 0.0
        for i in range(lo, hi):
            if p[i] > 0.0:
                p_log_p += p[i] * log_psd[r, i]
        norm = max(broad_sum, floor)
        out[r, col] = (broad_sum * math.log(norm) - p_log_p) / norm / math.log(max(n_broad, 2))
        out[r, col + 1] = freqs[peak]
        col += 2
        for fraction in fractions:
            # Lowest frequency below which this share of the broadband power lies.
            below = 0
            for i in range(n_broad):
                below += cumulative[i] < fraction * broad_sum
            out[r, col] = freqs[lo + min(below, n_broad - 1)]
            col += 1
        slope = 0.0
        for i in range(n_log):
            j = first_positive + i
            slope += (log_psd[r, j] if p[j] >= floor else log_floor) * log_f[i]
        out[r, col] = slope / math.log(10.0) / log_f_ss
        col += 1
        if lines.shape[0]:
            above_lo = 0.0
            for i in range(lo, p.shape[0]):
                above_lo += p[i]
            above_lo *= df
            for k in range(lines.shape[0]):
                line = 0.0
                for i in range(lines[k, 0], lines[k, 1]):
                    line += p[i]
                out[r, col] = line * df / max(above_lo, floor)
                col += 1
