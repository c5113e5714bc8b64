"""Numba kernels for the loops numpy cannot fuse: one row is one epoch of one channel.

This module holds the options every kernel shares, ``log_positive`` and the time-domain kernel
``time_domain_rows`` (quartiles from a histogram and a partial sort, the permutation entropy from
vectorised ordinal-pattern counts); ``kernels_spectral`` holds the spectral and wavelet kernels.

numpy needs a temporary array and a pass over memory per operation (centre, square, cube,
compare, partition...); these kernels read each row a few times from cache and keep every sum
in a register. Written by hand because no library computes these statistics for many short
rows at once (antropy and YASA loop in Python over epochs; ``np.percentile`` partitions twice).

All kernels take C-contiguous 2-D arrays, write into a preallocated float64 ``out`` and release
the GIL, so threads may share the rows of a chunk. They compile on first use and are cached on
disk (``cache=True``). Sums run in float64; ``fastmath`` only allows re-association and fused
multiply-add, so LLVM vectorises the sums (no assumption about NaN or infinity: a non-finite
sample gives non-finite features, as with numpy).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Every kernel's options. "numpy" error model: a division by zero gives inf / NaN, as in numpy,
# instead of raising.
JIT = {"cache": True, "nogil": True, "error_model": "numpy"}
FASTMATH = {"reassoc", "contract"}
_QUARTILE_BINS = 512
_SMALL_SORT = 32

# Columns of ``time_domain_rows``' output, in order.
TIME_COLUMNS = (
    "mean",
    "std",
    "iqr",
    "skewness",
    "kurtosis",
    "clipped_fraction",
    "hjorth_mobility",
    "hjorth_complexity",
    "mean_abs_diff",
    "zero_crossings",
    "permutation_entropy",
    "mean_square",
    "mean_abs_deviation",
)


@njit(**JIT, fastmath=FASTMATH)
def _raw_sums(row):
    """Sums of x, x^2, dx^2, |dx| and ddx^2 (first and second differences), in one pass."""
    n = row.shape[0]
    s1 = s2 = s_d2 = s_dabs = s_dd2 = 0.0
    for i in range(n - 2):
        a, b, c = np.float64(row[i]), np.float64(row[i + 1]), np.float64(row[i + 2])
        s1 += a
        s2 += a * a
        d = b - a
        s_d2 += d * d
        s_dabs += abs(d)
        dd = (c - b) - d
        s_dd2 += dd * dd
    for i in range(max(n - 2, 0), n):
        a = np.float64(row[i])
        s1 += a
        s2 += a * a
    if n >= 2:
        d = np.float64(row[n - 1]) - row[n - 2]
        s_d2 += d * d
        s_dabs += abs(d)
    return s1, s2, s_d2, s_dabs, s_dd2


@njit(**JIT)  # no fastmath: every sample must take the same rounding, so the bins stay monotone
def _histogram_bin(value, low, scale):
    """``(value - low) * scale`` clipped to the histogram's bins."""
    v = (value - low) * scale
    v = v if v > 0.0 else 0.0
    return np.int16(v if v < _QUARTILE_BINS - 1.0 else _QUARTILE_BINS - 1.0)


@njit(**JIT, fastmath=FASTMATH)
def _central_sums_and_bins(row, mean, low, scale, bins):
    """Sums of (x - mean)^2, ^3, ^4 and |x - mean|; and each sample's histogram bin."""
    s2 = s3 = s4 = s_abs = 0.0
    for i in range(row.shape[0]):
        c = row[i] - mean
        c2 = c * c
        s2 += c2
        s3 += c2 * c
        s4 += c2 * c2
        s_abs += abs(c)
        bins[i] = _histogram_bin(row[i], low, scale)
    return s2, s3, s4, s_abs


@njit(**JIT)
def _ordered_bits(bits, sign_mask):
    """IEEE-754 bits as integers that sort like the floats (an involution: it also undoes itself)."""
    return bits ^ sign_mask if bits < 0 else bits


@njit(**JIT)
def _min_max_bits(bits, sign_mask):
    low, high = _ordered_bits(bits[0], sign_mask), _ordered_bits(bits[0], sign_mask)
    for i in range(bits.shape[0]):
        key = _ordered_bits(bits[i], sign_mask)
        low, high = min(low, key), max(high, key)
    return _ordered_bits(low, sign_mask), _ordered_bits(high, sign_mask)


@njit(**JIT)
def _min_max_float32(row):
    low, high = _min_max_bits(row.view(np.int32), np.int32(0x7FFFFFFF))
    values = np.array([low, high], dtype=np.int32).view(np.float32)
    return np.float64(values[0]), np.float64(values[1])


@njit(**JIT)
def _min_max_float64(row):
    low, high = _min_max_bits(row.view(np.int64), np.int64(0x7FFFFFFFFFFFFFFF))
    values = np.array([low, high], dtype=np.int64).view(np.float64)
    return values[0], values[1]


@njit(**JIT)
def _min_max(row):
    """Minimum and maximum of a finite row, found on its bits read as ordered integers: integer
    reductions vectorise where float ones (NaN-aware) do not, ~2.5x faster."""
    return _min_max_float32(row) if row.itemsize == 4 else _min_max_float64(row)


@njit(**JIT, fastmath=FASTMATH)
def _crossings_and_extremes(row, mean, low, high):
    """Sign changes of x - mean, and samples equal to the minimum or the maximum."""
    n = row.shape[0]
    crossings = extremes = 0
    for i in range(n - 1):
        crossings += (row[i] < mean) != (row[i + 1] < mean)
        extremes += (row[i] == low) + (row[i] == high)
    extremes += (row[n - 1] == low) + (row[n - 1] == high)
    return crossings, extremes


@njit(**JIT)
def _entropy_of_counts(counts, n_windows, n_patterns):
    entropy = 0.0
    for c in counts:
        if c > 0:
            share = c / n_windows
            entropy -= share * math.log(share)
    return entropy / math.log(n_patterns)


@njit(**JIT, fastmath=FASTMATH)
def _permutation_entropy_order_3(row, delay):
    """Order 3 (the default) in one vectorised pass: a pattern is fixed by three comparisons
    (x1 < x0, x2 < x0, x2 < x1), and the counts of their eight combinations (two cannot occur)
    follow by inclusion-exclusion from the sums of the comparisons and of their products."""
    n_windows = row.shape[0] - 2 * delay
    # Three aligned views: runtime offsets inside the loop would stop LLVM from vectorising it.
    x0, x1, x2 = (
        row[:n_windows],
        row[delay : delay + n_windows],
        row[2 * delay : 2 * delay + n_windows],
    )
    sa = sb = sc = sab = sac = sbc = sabc = 0
    for t in range(n_windows):
        a = x1[t] < x0[t]
        b = x2[t] < x0[t]
        c = x2[t] < x1[t]
        sa += a
        sb += b
        sc += c
        sab += a & b
        sac += a & c
        sbc += b & c
        sabc += a & b & c
    counts = np.array(
        [
            n_windows - sa - sb - sc + sab + sac + sbc - sabc,
            sa - sab - sac + sabc,
            sb - sab - sbc + sabc,
            sc - sac - sbc + sabc,
            sab - sabc,
            sac - sabc,
            sbc - sabc,
            sabc,
        ]
    )
    return _entropy_of_counts(counts, n_windows, 6)


@njit(**JIT)
def _permutation_entropy(row, order, delay, codes, counts):
    """Normalised Shannon entropy of the ordinal patterns of ``order`` samples ``delay`` apart.

    Each window's pattern is its Lehmer code (for each sample, how many later samples of the
    window are smaller), built one comparison at a time over all windows so the loops vectorise.
    Ties count as "not smaller", the convention of comparing with ``>``.
    """
    n_windows = row.shape[0] - (order - 1) * delay
    if n_windows < 1:
        return 0.0
    if order == 3:
        return _permutation_entropy_order_3(row, delay)
    code = codes[:n_windows]
    code[:] = 0
    for i in range(order - 1):
        if i > 0:
            radix = np.int16(order - i)
            for t in range(n_windows):
                code[t] *= radix
        earlier = row[i * delay : i * delay + n_windows]
        for j in range(i + 1, order):
            later = row[j * delay : j * delay + n_windows]
            for t in range(n_windows):
                code[t] += np.int16(later[t] < earlier[t])
    if counts.shape[0] <= 24:  # up to order 4: one vectorised count per pattern beats scattering
        for p in range(counts.shape[0]):
            k = 0
            for t in range(n_windows):
                k += code[t] == p
            counts[p] = k
    else:
        counts[:] = 0
        for t in range(n_windows):
            counts[code[t]] += 1
    return _entropy_of_counts(counts, n_windows, counts.shape[0])


@njit(**JIT)
def _insertion_sort(values, n):
    for i in range(1, n):
        v = values[i]
        j = i - 1
        while j >= 0 and values[j] > v:
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = v


@njit(**JIT)
def _bins_of_ranks(histogram, rank, n):
    """Bins holding order statistics ``rank`` and ``rank + 1`` (0-based, of ``n`` values), and
    how many values lie below the first; counted from the nearer end of the histogram."""
    n_bins = histogram.shape[0]
    if rank < n // 2:
        below, first, first_below = 0, -1, 0
        for b in range(n_bins):
            if first < 0 and below + histogram[b] > rank:
                first, first_below = b, below
            if below + histogram[b] > rank + 1:
                return first, b, first_below
            below += histogram[b]
        return first, n_bins - 1, first_below
    above, last = 0, n_bins - 1  # values above the bin, counted down from the top
    found_last = False
    for b in range(n_bins - 1, -1, -1):
        if not found_last and above + histogram[b] > n - 2 - rank:
            last, found_last = b, True
        if above + histogram[b] > n - 1 - rank:
            return b, last, n - above - histogram[b]
        above += histogram[b]
    return 0, last, 0


@njit(**JIT)
def _gather_bins(row, bins, first, last, out):
    """The values whose bin is in ``first..last`` (branch-free appends); returns their count."""
    span = np.uint16(last - first)
    m = 0
    for i in range(row.shape[0]):
        out[m] = row[i]
        m += np.uint16(bins[i] - first) <= span  # one unsigned comparison: first <= bin <= last
    return m


@njit(**JIT)
def _quantile(row, bins, histogram, candidates, position):
    """Linear-interpolation quantile at ``position`` (a 0-based fractional rank), as
    ``np.percentile`` computes it: only the values in the bins of its two neighbouring order
    statistics are sorted."""
    n = row.shape[0]
    rank = min(int(position), n - 2)
    first, last, below = _bins_of_ranks(histogram, rank, n)
    m = _gather_bins(row, bins, np.int16(first), np.int16(last), candidates)
    chosen = candidates[:m]
    if m <= _SMALL_SORT:
        _insertion_sort(chosen, m)
    else:
        chosen.sort()
    a, b = np.float64(chosen[rank - below]), np.float64(chosen[rank + 1 - below])
    return a + (b - a) * (position - rank)


@njit(**JIT)
def _histogram(bins, histogram):
    histogram[:] = 0
    for i in range(bins.shape[0]):
        histogram[bins[i]] += 1


@njit(**JIT)
def _safe_divide(num, den):
    return num / den if den > 0.0 else 0.0


@njit(**JIT)
def time_domain_rows(x, order, delay, out):
    """Per row of ``x (rows, n)``: the ``TIME_COLUMNS`` statistics into ``out (rows, 13)``.

    ``mean_abs_diff``, ``zero_crossings``, ``mean_square`` and ``mean_abs_deviation`` are raw
    (per sample, a count); the caller turns them into rates and logs. ``order``: 2..7.

    Quartiles (for the IQR) without sorting: a histogram over mean +- 2 std (values outside go
    to the end bins) finds the few values that can be each quartile's two neighbouring order
    statistics, and only those are sorted. Every quartile of any sample lies within
    mean +- sqrt(3) std (Cantelli), so a quartile's bin holds a handful of values; the result is
    exact whatever the data (the binning is monotone).
    """
    n = x.shape[1]
    bins = np.empty(n, np.int16)
    histogram = np.empty(_QUARTILE_BINS, np.int32)
    candidates = np.empty(n, x.dtype)
    codes = np.empty(n, np.int16)
    n_patterns = 1
    for k in range(2, order + 1):
        n_patterns *= k
    counts = np.empty(n_patterns, np.int64)
    for r in range(x.shape[0]):
        row = x[r]
        s1, s2, s_d2, s_dabs, s_dd2 = _raw_sums(row)
        if not np.isfinite(s2):  # a NaN or infinite sample: every feature is undefined
            out[r, :] = np.nan
            continue
        mean = s1 / n
        # The raw-moment variance only sets the histogram's range: cancellation there costs
        # speed, never exactness.
        spread = math.sqrt(max(s2 / n - mean * mean, 0.0))
        scale = _QUARTILE_BINS / (4.0 * spread) if spread > 0.0 else 0.0
        c2, c3, c4, c_abs = _central_sums_and_bins(row, mean, mean - 2.0 * spread, scale, bins)
        m2, m3, m4 = c2 / n, c3 / n, c4 / n
        low, high = _min_max(row)
        crossings, extremes = _crossings_and_extremes(row, mean, low, high)
        if m2 > 0.0 and n >= 2:
            _histogram(bins, histogram)
            iqr = _quantile(row, bins, histogram, candidates, 0.75 * (n - 1)) - _quantile(
                row, bins, histogram, candidates, 0.25 * (n - 1)
            )
        else:
            iqr = 0.0
        out[r, 0] = mean
        out[r, 1] = math.sqrt(m2)
        out[r, 2] = iqr
        out[r, 3] = _safe_divide(m3, m2**1.5)
        out[r, 4] = m4 / (m2 * m2) - 3.0 if m2 > 0.0 else 0.0
        out[r, 5] = min(extremes, n) / n
        if n >= 3:
            # Variance of a difference as E[d^2] - E[d]^2, where E[d] = (last - first) / count.
            mean_d = (np.float64(row[n - 1]) - row[0]) / (n - 1)
            mean_dd = ((np.float64(row[n - 1]) - row[n - 2]) - (np.float64(row[1]) - row[0])) / (
                n - 2
            )
            var_d = max(s_d2 / (n - 1) - mean_d * mean_d, 0.0)
            var_dd = max(s_dd2 / (n - 2) - mean_dd * mean_dd, 0.0)
            mobility = math.sqrt(_safe_divide(var_d, m2))
            out[r, 6] = mobility
            out[r, 7] = _safe_divide(math.sqrt(_safe_divide(var_dd, var_d)), mobility)
            out[r, 8] = s_dabs / (n - 1)
        else:
            out[r, 6:9] = 0.0
        out[r, 9] = crossings
        out[r, 10] = _permutation_entropy(row, order, delay, codes, counts)
        out[r, 11] = m2 + mean * mean
        out[r, 12] = c_abs / n


@njit(**JIT)
def log_positive(x, out, base):
    """Logarithm to ``base`` of each positive value of ``x`` (0 elsewhere), into ``out``.

    libm's ``log`` rounds alike on every CPU; numpy's vectorised float64 ``log`` does not (its
    AVX-512 loop differs in the last bit from the AVX2 one), which made the same epochs give
    other features, and other models, on another machine.
    """
    scale = 1.0 / math.log(base)
    flat_x, flat_out = x.ravel(), out.ravel()
    for i in range(flat_x.size):
        flat_out[i] = math.log(flat_x[i]) * scale if flat_x[i] > 0 else 0.0
