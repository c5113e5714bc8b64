"""Building blocks of the synthetic recordings: time-varying coloured noise and event waveforms.

Written by hand because they are the generator itself. Continuous activity is synthesised
frame by frame from a spectrum that changes every few seconds (random coefficients, inverse
FFT, overlap-add with a sqrt-Hann window), so a whole night of one channel costs one batched
inverse FFT rather than one FFT per rhythm, and stage changes become smooth cross-fades.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np
from scipy import fft, ndimage, signal, special

FRAME_S = 8.0  # synthesis frame; frames overlap by half, so the spectrum changes every 4 s


def frame_length(sfreq: float) -> int:
    """Samples per synthesis frame (even, so the hop is exactly half a frame)."""
    return 2 * int(round(FRAME_S * sfreq / 2))


def frame_centres_s(n_samples: int, sfreq: float) -> np.ndarray:
    """Time (s) at the centre of each synthesis frame covering ``n_samples``."""
    hop = frame_length(sfreq) // 2
    return np.arange(-(-n_samples // hop) + 1) * hop / sfreq


def bin_frequencies(sfreq: float) -> np.ndarray:
    """Frequency (Hz) of each spectral bin of a synthesis frame."""
    return fft.rfftfreq(frame_length(sfreq), 1.0 / sfreq)


def unit_power(weights: np.ndarray) -> np.ndarray:
    """Spectral power weights scaled to sum to one (a component of unit variance)."""
    weights = np.asarray(weights, dtype=np.float64)
    return weights / weights.sum()


def band(freqs: np.ndarray, low: float, high: float) -> np.ndarray:
    """Flat power between ``low`` and ``high`` Hz, unit variance."""
    return unit_power((freqs >= low) & (freqs <= high))


def peak(freqs: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Gaussian spectral peak (e.g. alpha) of standard deviation ``width`` Hz, unit variance."""
    return unit_power(exp(-0.5 * ((freqs - centre) / width) ** 2))


def power_law(
    freqs: np.ndarray, exponent: float, floor: float = 0.0, low: float = 0.2
) -> np.ndarray:
    """1/f^exponent power above ``low`` Hz plus a white floor (relative to 1 Hz), unit variance."""
    above = freqs >= low
    return unit_power(np.where(above, np.maximum(freqs, low) ** -exponent + floor, 0.0))


def random_coefficients(rng: np.random.Generator, n_frames: int, n_bins: int) -> np.ndarray:
    """Complex spectral coefficients, real and imaginary parts uniform on [-0.5, 0.5).

    Uniform rather than Gaussian draws: five times cheaper, and every output sample sums
    hundreds of them, so the signal is Gaussian all the same. Their variance (1/12 each) is
    accounted for in :func:`synthesize`.
    """
    draws = rng.random((n_frames, n_bins, 2), dtype=np.float32)
    draws -= np.float32(0.5)
    return draws.view(np.complex64)[..., 0]


def synthesize(coefficients: np.ndarray, amplitude: np.ndarray, n_samples: int) -> np.ndarray:
    """Overlap-add synthesis: frame ``i`` has amplitude spectrum ``amplitude[i]`` (RMS units).

    ``amplitude[i, b]`` is the RMS the signal gets from bin ``b`` (see :func:`mix_amplitude`).
    """
    n_frames, n_bins = coefficients.shape
    length = 2 * (n_bins - 1)
    hop = length // 2
    # With coefficient parts of variance 1/12, one frame's irfft has variance
    # sum(amplitude^2) / (3 length^2); the squared sqrt-Hann windows of overlapping frames sum
    # to one, so scaling by length * sqrt(3) gives RMS units.
    frames = fft.irfft(
        coefficients * (amplitude * np.float32(length * np.sqrt(3.0))), n=length, axis=-1
    )
    frames *= np.sqrt(np.hanning(length + 1)[:length]).astype(np.float32)
    out = np.zeros((n_frames + 1, hop), dtype=np.float32)  # row i: samples [i * hop, (i + 1) * hop)
    out[:-1] += frames[:, :hop]
    out[1:] += frames[:, hop:]
    return out.ravel()[hop : hop + n_samples]


def exp(x) -> np.ndarray:
    """``exp(x)`` rounded alike on every CPU.

    numpy computes float64 ``exp`` with code chosen per CPU (an AVX-512 loop where the CPU has it),
    and the loops differ in the last bit: the same seed gave other samples on an AVX2 machine.
    scipy's scalar ``exp2`` is one compiled routine everywhere.
    """
    return special.exp2(np.multiply(x, np.log2(np.e), dtype=np.float64))


def gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter1d(x, sigma)`` with its kernel from :func:`exp`."""
    radius = int(4.0 * sigma + 0.5)
    kernel = exp(-0.5 / sigma**2 * np.arange(-radius, radius + 1) ** 2)
    return ndimage.correlate1d(x, kernel / kernel.sum(), mode="reflect")


def weighted_sum(weights: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``weights @ table`` (``(..., k) @ (k,)`` or ``(..., k) @ (k, m)``), summed in a fixed order.

    Written by hand because BLAS picks its kernels by CPU (OpenBLAS ``DYNAMIC_ARCH``), and kernels
    of different vector widths round differently: with ``@`` the same seed gave other samples on
    an AVX2 machine than on an AVX-512 one. Elementwise products added one term at a time round
    the same on every CPU, so a seed gives bit-identical recordings everywhere.
    """
    weights, table = np.asarray(weights), np.asarray(table)
    out = weights[..., 0, None] * table[0] if table.ndim == 2 else weights[..., 0] * table[0]
    for k in range(1, table.shape[0]):
        out = out + (
            weights[..., k, None] * table[k] if table.ndim == 2 else weights[..., k] * table[k]
        )
    return out


def mix_amplitude(rms: np.ndarray, spectra: np.ndarray) -> np.ndarray:
    """Amplitude spectrum per frame of a sum of independent components.

    ``rms`` is ``(n_frames, n_components)``, ``spectra`` ``(n_components, n_bins)`` unit-power
    weights; the result ``(n_frames, n_bins)`` is ``sqrt(sum_k rms_k^2 * spectrum_k)``.
    """
    return np.sqrt(weighted_sum(np.square(rms).astype(np.float32), spectra.astype(np.float32)))


def correlated(shared: np.ndarray, own: np.ndarray, coherence: float) -> np.ndarray:
    """``own`` turned, in place, into coefficients sharing ``coherence`` of their variance with ``shared``."""
    own *= np.float32(np.sqrt(1 - coherence))
    own += np.float32(np.sqrt(coherence)) * shared
    return own


def ramp(values: np.ndarray, width_s: float, step_s: float) -> np.ndarray:
    """Moving average over ``width_s`` seconds of values sampled every ``step_s`` (last axis)."""
    return ndimage.uniform_filter1d(
        values, max(1, int(round(width_s / step_s))), axis=-1, mode="nearest"
    )


def slow_fluctuation(
    rng: np.random.Generator, n: int, sigma: float, timescale_s: float, step_s: float
) -> np.ndarray:
    """Log-normal multiplicative drift (median 1, log-std ``sigma``) sampled every ``step_s``."""
    width = max(1, int(round(timescale_s / step_s)))
    walk = ndimage.uniform_filter1d(rng.standard_normal(n), width, mode="wrap") * np.sqrt(width)
    return exp(sigma * walk)


def stage_events(rng: np.random.Generator, rate_per_min: np.ndarray, epoch_s: float) -> np.ndarray:
    """Sorted Poisson event times (s): ``rate_per_min[i]`` events per minute within epoch ``i``."""
    counts = rng.poisson(np.asarray(rate_per_min) * epoch_s / 60.0)
    starts = np.repeat(np.arange(len(counts)) * epoch_s, counts)
    return np.sort(starts + rng.uniform(0, epoch_s, size=len(starts)))


def add_waveforms(track: np.ndarray, onsets_s: np.ndarray, waves: np.ndarray, sfreq: float) -> None:
    """Add ``waves[i]`` (rows, zero-padded) to ``track`` from ``onsets_s[i]``, in place."""
    if len(waves) == 0:
        return
    starts = np.round(np.asarray(onsets_s) * sfreq).astype(np.int64)
    index = starts[:, None] + np.arange(waves.shape[1])
    inside = index < len(track)
    track += np.bincount(index[inside], weights=waves[inside], minlength=len(track))[
        : len(track)
    ].astype(np.float32)


def bursts(
    durations_s: np.ndarray, sfreq: float, carrier: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Hann-windowed waveforms, one row per burst: ``carrier(t)`` with ``t`` (rows x samples) in s."""
    length = int(np.ceil(np.max(durations_s, initial=0.0) * sfreq)) + 1
    t = np.broadcast_to(np.arange(length) / sfreq, (len(durations_s), length))
    d = np.asarray(durations_s)[:, None]
    window = np.where(t < d, np.sin(np.pi * t / d) ** 2, 0.0)
    return window * carrier(t)


def impulse_train(
    n: int, positions_s: np.ndarray, amplitudes: np.ndarray, sfreq: float
) -> np.ndarray:
    """Zeros with ``amplitudes`` at the samples nearest ``positions_s`` (coinciding ones add)."""
    index = np.clip(np.round(np.asarray(positions_s) * sfreq).astype(np.int64), 0, n - 1)
    return np.bincount(index, weights=amplitudes, minlength=n)


def rise_decay(x: np.ndarray, sfreq: float, rise_s: float, decay_s: float) -> np.ndarray:
    """Filter an impulse train with the kernel ``(1 - exp(-t/rise)) * exp(-t/decay)``.

    A step that rises in ``rise_s`` and drifts back in ``decay_s``: an eye movement seen
    through an AC-coupled EOG amplifier. Written as the difference of two one-pole filters.
    """
    slow = exp(-1.0 / (decay_s * sfreq))
    fast = exp(-1.0 / sfreq * (1.0 / rise_s + 1.0 / decay_s))
    return signal.lfilter([0.0, slow - fast], [1.0, -(slow + fast), slow * fast], x).astype(
        np.float32
    )


def alpha_kernel(x: np.ndarray, sfreq: float, time_constant_s: float) -> np.ndarray:
    """Filter an impulse train with ``(t/tau) exp(1 - t/tau)`` (peak 1 at ``t = tau``): a blink."""
    pole = exp(-1.0 / (time_constant_s * sfreq))
    gain = np.e / (time_constant_s * sfreq)
    return signal.lfilter([0.0, gain * pole], [1.0, -2 * pole, pole**2], x).astype(np.float32)


def mains(n: int, sfreq: float, line_hz: float = 50.0) -> tuple[np.ndarray, np.ndarray] | None:
    """Cosine and sine at the mains frequency, or ``None`` above Nyquist (an ADC filters it)."""
    if line_hz > sfreq / 2:
        return None
    # The wave repeats every `period` samples (sfreq = period / q): compute one block and tile it.
    period = Fraction(sfreq).limit_denominator(1000).numerator
    phase = 2 * np.pi * line_hz * np.arange(period) / sfreq
    return np.resize(np.cos(phase).astype(np.float32), n), np.resize(
        np.sin(phase).astype(np.float32), n
    )
