"""Time-domain features: one numba pass per epoch and channel (``kernels.time_domain_rows``)."""

from __future__ import annotations

import numpy as np

from epochstack.signals.features.config import ChannelPlan, FeaturePlan
from epochstack.signals.features.kernels import TIME_COLUMNS, log_positive, time_domain_rows

# Kernel columns published as they are, in column order (the rest are turned into rates / logs).
_SIGNAL_STATISTICS = (
    "mean",
    "std",
    "iqr",
    "skewness",
    "kurtosis",
    "clipped_fraction",
    "hjorth_mobility",
    "hjorth_complexity",
)
_HR_STATISTICS = ("mean", "std", "slope")


def row_statistics(x: np.ndarray, order: int = 3, delay: int = 1) -> dict[str, np.ndarray]:
    """The kernel's statistics (``kernels.TIME_COLUMNS``) along the last axis of ``x``.

    Each value has shape ``x.shape[:-1]``: mean, std, iqr, skewness, kurtosis, clipped fraction,
    Hjorth mobility and complexity (per sample), mean |first difference|, zero crossings of the
    mean-removed signal (a count), permutation entropy (0..1, ``order`` samples ``delay`` apart),
    mean square and mean |x - mean|.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating) or x.dtype.itemsize < 4:
        x = x.astype(np.float64)
    rows = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    out = np.empty((rows.shape[0], len(TIME_COLUMNS)))
    time_domain_rows(rows, int(order), int(delay), out)
    return {name: out[:, j].reshape(x.shape[:-1]) for j, name in enumerate(TIME_COLUMNS)}


def _slope_per_minute(x: np.ndarray, sfreq: float) -> np.ndarray:
    """Least-squares linear trend along the last axis, in signal units per minute."""
    t = np.arange(x.shape[-1]) / sfreq
    t = t - t.mean()
    return (x @ t) / (t @ t) * 60.0


def time_columns(channel: ChannelPlan, plan: FeaturePlan) -> list[str]:
    """Column names of one channel's time-domain features, in computation order."""
    prefix = f"{channel.name}_time"
    if channel.channel_type == "hr":
        return [f"{prefix}_{name}" for name in _HR_STATISTICS]
    names = [*_SIGNAL_STATISTICS, "line_length", "zero_crossing_rate", "permutation_entropy"]
    if channel.channel_type == "emg":
        names.append("logrms")
    if channel.name == "acc_magnitude":
        names.append("activity_count")
    return [f"{prefix}_{name}" for name in names]


def time_domain_features(x: np.ndarray, plan: FeaturePlan) -> dict[int, np.ndarray]:
    """Per channel index, a ``(n_epochs, len(time_columns(channel)))`` block.

    Statistics, Hjorth, line length, zero crossings, permutation entropy, clipping; EMG log RMS;
    heart rate mean / std / slope; accelerometer-magnitude activity count.
    """
    config, floor, sfreq = plan.config["time_domain"], plan.config["log_floor"], plan.sfreq
    n_times = x.shape[-1]
    hr = [c for c, ch in enumerate(plan.channels) if ch.channel_type == "hr"]
    signal = [c for c, ch in enumerate(plan.channels) if ch.channel_type != "hr"]
    blocks: dict[int, np.ndarray] = {}
    if hr:
        values = x[:, hr]
        stats = [values.mean(axis=-1), values.std(axis=-1), _slope_per_minute(values, sfreq)]
        for k, c in enumerate(hr):
            blocks[c] = np.column_stack([s[:, k] for s in stats])
    if not signal:
        return blocks
    stats = row_statistics(
        x[:, signal] if hr else x, config["permutation_order"], config["permutation_delay"]
    )
    shared = np.stack(
        [stats[name] for name in _SIGNAL_STATISTICS]
        + [
            stats["mean_abs_diff"] * sfreq,
            stats["zero_crossings"] / (n_times / sfreq),
            stats["permutation_entropy"],
        ],
        axis=-1,
    )
    for k, c in enumerate(signal):
        channel, block = plan.channels[c], shared[:, k]
        if channel.channel_type == "emg":
            rms = np.sqrt(stats["mean_square"][:, k])
            log_rms = np.empty_like(rms)
            log_positive(np.ascontiguousarray(np.maximum(rms, floor)), log_rms, 10.0)
            block = np.column_stack([block, log_rms])
        if channel.name == "acc_magnitude":
            block = np.column_stack([block, stats["mean_abs_deviation"][:, k] * n_times / sfreq])
        blocks[c] = block
    return blocks
