"""Time-domain features, each computed for all epochs and channels at once along the last axis."""

from __future__ import annotations

import math
from itertools import combinations, permutations

import numpy as np

from epochstack.signals.features.config import FeaturePlan


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` in float64, 0 where ``den`` is 0 (flat epochs)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def _sum_of_products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum(a * b, axis=-1)`` without the temporary product (einsum is a single pass)."""
    return np.einsum("...i,...i->...", a, b)


def _count(mask: np.ndarray) -> np.ndarray:
    """True values along the last axis (summing as int32 is several times faster than count_nonzero)."""
    return mask.sum(axis=-1, dtype=np.int32)


def hjorth(x: np.ndarray, var_x: np.ndarray | None = None, dx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hjorth mobility and complexity (per sample, dimensionless) along the last axis.

    ``var_x`` (variance of ``x``) and ``dx`` (``np.diff(x, axis=-1)``) may be passed when known.
    """
    if var_x is None:
        centred = x - x.mean(axis=-1, keepdims=True)
        var_x = _sum_of_products(centred, centred) / x.shape[-1]
    dx = np.diff(x, axis=-1) if dx is None else dx
    ddx = np.diff(dx, axis=-1)
    var_dx, var_ddx = _difference_variance(dx, x), _difference_variance(ddx, dx)
    mobility = np.sqrt(_safe_divide(var_dx, var_x))
    complexity = _safe_divide(np.sqrt(_safe_divide(var_ddx, var_dx)), mobility)
    return mobility, complexity


def _difference_variance(diff: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Variance of ``diff = np.diff(source)`` as E[d^2] - E[d]^2, with E[d] = (last - first) / n:
    no centred copy, and no cancellation since a difference has a mean near 0."""
    n = diff.shape[-1]
    mean = (source[..., -1].astype(np.float64) - source[..., 0]) / n
    return _sum_of_products(diff, diff) / n - mean**2


def permutation_entropy(x: np.ndarray, order: int = 3, delay: int = 1) -> np.ndarray:
    """Normalised permutation entropy (0..1) along the last axis.

    Written by hand because antropy (installed with YASA) takes one 1-D signal at a time: each ordinal
    pattern is coded by the outcomes of its ``order * (order - 1) / 2`` pairwise comparisons,
    which avoids materialising ``argsort`` over every window (memory ``order`` times the signal).
    """
    n = x.shape[-1] - (order - 1) * delay
    if n < 1:
        return np.zeros(x.shape[:-1])
    lagged = [x[..., i * delay: i * delay + n] for i in range(order)]
    pairs = list(combinations(range(order), 2))
    dtype = np.uint8 if len(pairs) <= 8 else np.uint32
    code, bits = np.zeros(x.shape[:-1] + (n,), dtype=dtype), np.empty(x.shape[:-1] + (n,), dtype=dtype)
    is_pattern = np.empty(x.shape[:-1] + (n,), dtype=bool)  # buffers reused: one allocation each
    for bit, (i, j) in enumerate(pairs):
        np.greater(lagged[i], lagged[j], out=is_pattern)
        np.left_shift(is_pattern, dtype(bit), out=bits, casting="unsafe")
        code |= bits
    counts = [_count(np.equal(code, c, out=is_pattern)) for c in _pattern_codes(order)]
    share = np.stack(counts, axis=-1) / n
    entropy = -np.sum(share * np.log(np.where(share > 0, share, 1.0)), axis=-1)
    return entropy / math.log(math.factorial(order))


def _pattern_codes(order: int) -> list[int]:
    """The comparison code of each of the ``order!`` ordinal patterns (other codes cannot occur)."""
    pairs = list(combinations(range(order), 2))
    return [
        sum(int(values[i] > values[j]) << bit for bit, (i, j) in enumerate(pairs))
        for values in permutations(range(order))
    ]


def _moments(x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Mean, std, IQR, skewness, excess kurtosis, clipped fraction; also the mean-removed signal."""
    n = x.shape[-1]
    mean = x.mean(axis=-1)
    centred = x - mean[..., None]
    squared = centred * centred
    m2 = squared.sum(axis=-1) / n
    m3 = _sum_of_products(squared, centred) / n
    m4 = _sum_of_products(squared, squared) / n
    q25, q75 = _quartiles(x)
    at_extreme = _count(x == x.min(axis=-1, keepdims=True)) + _count(x == x.max(axis=-1, keepdims=True))
    moments = {
        "mean": mean,
        "std": np.sqrt(m2),
        "iqr": q75 - q25,
        "skewness": _safe_divide(m3, m2**1.5),
        "kurtosis": np.where(m2 > 0, _safe_divide(m4, m2**2) - 3.0, 0.0),
        "clipped_fraction": at_extreme.clip(max=n) / n,
    }
    return moments, centred


def _quartiles(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and third quartiles along the last axis, as ``np.percentile`` (linear) computes them.

    Two single-pivot ``np.partition`` calls: ~2x faster than ``np.percentile``'s multi-pivot
    partition or a full sort on (epochs, channels, times) batches.
    """
    n = x.shape[-1]
    if n < 4:
        return tuple(np.percentile(x, [25, 75], axis=-1))
    pos25, pos75 = 0.25 * (n - 1), 0.75 * (n - 1)
    k25 = int(pos25)
    first = np.partition(x, k25, axis=-1)
    k75 = int(pos75) - k25 - 1  # position within the part above k25
    upper = first[..., k25 + 1:]
    upper.partition(k75, axis=-1)  # in place: no second copy
    # Linear interpolation towards the next order statistic: the minimum of what lies above.
    q25 = first[..., k25] + (upper.min(axis=-1) - first[..., k25]) * (pos25 - k25)
    q75 = upper[..., k75] + (upper[..., k75 + 1:].min(axis=-1) - upper[..., k75]) * (pos75 - int(pos75))
    return q25, q75


def _slope_per_minute(x: np.ndarray, sfreq: float) -> np.ndarray:
    """Least-squares linear trend along the last axis, in signal units per minute."""
    t = np.arange(x.shape[-1]) / sfreq
    t = t - t.mean()
    return (x @ t) / (t @ t) * 60.0


def time_domain_features(x: np.ndarray, plan: FeaturePlan) -> dict[str, np.ndarray]:
    """Statistics, Hjorth, line length, zero crossings, permutation entropy, clipping; EMG log
    RMS; heart rate mean / std / slope; accelerometer-magnitude activity count."""
    config, floor, sfreq = plan.config["time_domain"], plan.config["log_floor"], plan.sfreq
    out: dict[str, np.ndarray] = {}
    is_hr = np.array([ch.channel_type == "hr" for ch in plan.channels])
    if is_hr.any():
        hr = x[:, is_hr]
        stats = {"mean": hr.mean(axis=-1), "std": hr.std(axis=-1), "slope": _slope_per_minute(hr, sfreq)}
        for k, channel in enumerate(ch for ch in plan.channels if ch.channel_type == "hr"):
            for stat, values in stats.items():
                out[f"{channel.name}_time_{stat}"] = values[:, k]
    signal_channels = [ch for ch in plan.channels if ch.channel_type != "hr"]
    if not signal_channels:
        return out
    s = x[:, ~is_hr] if is_hr.any() else x
    features, centred = _moments(s)
    dx = np.diff(s, axis=-1)
    features["hjorth_mobility"], features["hjorth_complexity"] = hjorth(s, features["std"] ** 2, dx)
    features["line_length"] = np.abs(dx, out=dx).mean(axis=-1) * sfreq
    negative = np.signbit(centred)
    features["zero_crossing_rate"] = _count(negative[..., 1:] != negative[..., :-1]) / (s.shape[-1] / sfreq)
    features["permutation_entropy"] = permutation_entropy(s, config["permutation_order"], config["permutation_delay"])
    for k, channel in enumerate(signal_channels):
        prefix = f"{channel.name}_time"
        for name, values in features.items():
            out[f"{prefix}_{name}"] = values[:, k]
        if channel.channel_type == "emg":
            rms = np.sqrt(np.mean(s[:, k] ** 2, axis=-1))
            out[f"{prefix}_logrms"] = np.log10(np.maximum(rms, floor))
        if channel.name == "acc_magnitude":
            out[f"{prefix}_activity_count"] = np.sum(np.abs(centred[:, k]), axis=-1) / sfreq
    return out
