"""Feature configuration: library defaults and the per-recording plan derived from them.

The defaults mirror ``conf/base/parameters_feature_engineering.yml`` so that the library works
without Kedro (``extract_features(..., config={})``); a given config overrides them key by key.
"""

from __future__ import annotations

import copy
import fnmatch
import logging
import re
from dataclasses import dataclass, field

import numpy as np
import pywt

from epochstack.errors import ParameterError

logger = logging.getLogger(__name__)

FAMILIES = ("spectral", "time_domain", "wavelet")
# Ordinal patterns are coded as int16 in the kernel: 7! = 5040 patterns at most.
MIN_PERMUTATION_ORDER, MAX_PERMUTATION_ORDER = 2, 7
CHANNEL_TYPES = ("eeg", "eog", "emg", "acc", "hr", "misc")

_SLEEP_BANDS = {
    "delta": [0.5, 4.0],
    "theta": [4.0, 8.0],
    "alpha": [8.0, 12.0],
    "sigma": [11.0, 16.0],
    "beta": [16.0, 30.0],
    "gamma": [30.0, 45.0],
}
# Open Seizure Database accelerometer bands (Hz): the OSD alarm region, its spectrum and
# "flap" ranges, seizure / clonus ranges, and 2-Hz sliding bands.
_ACC_BANDS = {
    "osd_roi": [3.0, 8.0],
    "osd_spec": [0.5, 12.5],
    "osd_flap": [2.0, 4.0],
    "seizure_main": [1.0, 4.0],
    "initial_clonus": [3.0, 5.0],
    "late_clonus": [1.0, 2.0],
    **{f"{lo}_{lo + 2}hz": [float(lo), float(lo + 2)] for lo in range(1, 9)},
}

DEFAULT_CONFIG: dict = {
    "families": list(FAMILIES),
    "chunk_epochs": 64,
    "n_threads": 1,
    "log_floor": 1.0e-12,
    "select": None,
    "spectral": {
        "window_s": 4.0,
        "min_nperseg": 64,
        "bands": {
            "eeg": _SLEEP_BANDS,
            "eog": _SLEEP_BANDS,
            "emg": {"broadband": [10.0, 45.0]},
            "acc": _ACC_BANDS,
            "misc": {
                "f00_05": [0.0, 0.05],
                "f05_10": [0.05, 0.1],
                "f10_20": [0.1, 0.2],
                "f20_40": [0.2, 0.4],
                "f40_70": [0.4, 0.7],
                "f70_100": [0.7, 1.0],
            },
        },
        "fraction_of_nyquist": ["misc"],
        "ratios": [
            ["theta", "delta"],
            ["delta", "beta"],
            ["alpha", "theta"],
            ["sigma", "delta"],
            ["theta", "beta"],
        ],
        "edge_fraction": 0.95,
        "line_noise_hz": [50.0, 60.0],
        "line_noise_half_width_hz": 1.0,
    },
    "time_domain": {"permutation_order": 3, "permutation_delay": 1},
    "wavelet": {"wavelet": "db4", "level": 5, "mode": "periodization"},
    "context": {
        "enabled": True,
        "features": [
            "*_spectral_logpow_*",
            "*_spectral_entropy",
            "*_time_logrms",
            "*_time_hjorth_mobility",
            "*_time_activity_count",
            "*_time_slope",
        ],
        "robust_normalise": True,
        "half_window": 2,
        "stats": ["mean"],
    },
}


def resolve_config(config: dict | None) -> dict:
    """``DEFAULT_CONFIG`` updated recursively with ``config`` (band tables are replaced whole)."""

    def merge(base: dict, extra: dict, path: str) -> dict:
        merged = copy.deepcopy(base)
        for key, value in extra.items():
            if path == "spectral.bands." or not (
                isinstance(value, dict) and isinstance(merged.get(key), dict)
            ):
                merged[key] = copy.deepcopy(value)
            else:
                merged[key] = merge(merged[key], value, f"{path}{key}.")
        return merged

    resolved = merge(DEFAULT_CONFIG, config or {}, "")
    unknown = set(resolved["families"]) - set(FAMILIES)
    if unknown:
        raise ParameterError(
            "features.families", f"unknown {sorted(unknown)}.", f"choose from {list(FAMILIES)}."
        )
    order, delay = (
        resolved["time_domain"]["permutation_order"],
        resolved["time_domain"]["permutation_delay"],
    )
    if not (isinstance(order, int) and MIN_PERMUTATION_ORDER <= order <= MAX_PERMUTATION_ORDER):
        raise ParameterError(
            "features.time_domain.permutation_order",
            f"is {order!r}.",
            f"use an integer from {MIN_PERMUTATION_ORDER} to {MAX_PERMUTATION_ORDER} (3 is usual).",
        )
    if not (isinstance(delay, int) and delay >= 1):
        raise ParameterError(
            "features.time_domain.permutation_delay",
            f"is {delay!r}.",
            "use an integer >= 1 (in samples).",
        )
    return resolved


def matching_columns(names: list[str], patterns: list[str]) -> list[int]:
    """Positions of the ``names`` matching any of the glob ``patterns`` (one compiled regex)."""
    matcher = re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None
    return [j for j, name in enumerate(names) if matcher is not None and matcher.match(name)]


def sanitize_name(name: str) -> str:
    """Lowercase, non-alphanumerics to ``_``: ``"EEG Fpz-Cz"`` -> ``"eeg_fpz_cz"``."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")


@dataclass
class ChannelPlan:
    """What to compute for one channel (or the virtual accelerometer magnitude)."""

    name: str
    channel_type: str
    bands: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class FeaturePlan:
    """Everything fixed by the sampling rate, epoch length and channels: built once per store."""

    sfreq: float
    n_times: int
    channels: list[ChannelPlan]
    acc_indices: list[int]
    nperseg: int
    wavelet_level: int
    config: dict
    sfreq_known: bool = True

    @property
    def nyquist(self) -> float:
        return self.sfreq / 2.0


def _channel_bands(
    channel_type: str, sfreq: float, nperseg: int, spectral: dict, sfreq_known: bool
) -> dict[str, tuple[float, float]]:
    nyquist, resolution = sfreq / 2.0, sfreq / nperseg
    # Without a known rate every channel takes the fraction-of-Nyquist bands (the misc table).
    table = channel_type if sfreq_known else "misc"
    scale = nyquist if table in spectral["fraction_of_nyquist"] or not sfreq_known else 1.0
    unit = "Hz" if sfreq_known else "cycles/sample"
    bands, dropped = {}, []
    for name, (lo, hi) in (spectral["bands"].get(table) or {}).items():
        lo, hi = float(lo) * scale, float(hi) * scale
        if hi > nyquist + 1e-9 or hi - lo < resolution:
            dropped.append(f"{name} [{lo:g}, {hi:g}]")
        else:
            bands[sanitize_name(name)] = (lo, hi)
    if dropped:
        logger.info(
            "%s channels: dropped bands (%s) above Nyquist (%g) or narrower than the resolution (%g): %s",
            channel_type,
            unit,
            nyquist,
            resolution,
            ", ".join(dropped),
        )
    return bands


def build_plan(
    sfreq: float,
    n_times: int,
    channel_names: list[str],
    channel_types: list[str],
    config: dict | None,
    *,
    sfreq_known: bool = True,
) -> FeaturePlan:
    """Resolve the config for a signal layout: Welch segment, bands per channel, wavelet level.

    ``sfreq_known=False`` (the source gave no sampling rate): one sample is the time unit (rates
    are per sample), every channel takes the fraction-of-Nyquist bands of ``spectral.bands.misc``,
    Welch segments are ``min_nperseg`` samples, and there are no line-noise features.
    """
    config = resolve_config(config)
    if not sfreq_known:
        sfreq = 1.0
    if len(channel_names) != len(channel_types):
        raise ValueError(
            f"{len(channel_names)} channel names but {len(channel_types)} channel types."
        )
    unknown = set(channel_types) - set(CHANNEL_TYPES)
    if unknown:
        raise ValueError(
            f"unknown channel types {sorted(unknown)}; expected {list(CHANNEL_TYPES)}."
        )
    spectral = config["spectral"]
    segment = round(spectral["window_s"] * sfreq) if sfreq_known else 0
    nperseg = int(min(n_times, max(spectral["min_nperseg"], segment)))
    names = [sanitize_name(n) for n in channel_names]
    if len(set(names)) != len(names):
        raise ValueError(
            f"channel names {channel_names} collide once sanitised to {names}; rename the channels."
        )
    bands_by_type = {
        t: _channel_bands(t, sfreq, nperseg, spectral, sfreq_known)
        for t in set(channel_types)
        if t != "hr"
    }
    channels = [
        ChannelPlan(n, t, bands_by_type.get(t, {}))
        for n, t in zip(names, channel_types, strict=True)
    ]
    acc_indices = [i for i, t in enumerate(channel_types) if t == "acc"]
    if len(acc_indices) >= 2:
        if "acc_magnitude" in names:
            raise ValueError(
                "a channel named 'acc_magnitude' clashes with the computed accelerometer magnitude; rename it."
            )
        channels.append(ChannelPlan("acc_magnitude", "acc", bands_by_type["acc"]))
    wavelet = config["wavelet"]
    max_level = pywt.dwt_max_level(n_times, pywt.Wavelet(wavelet["wavelet"]).dec_len)
    level = int(min(wavelet["level"], max_level))
    if "wavelet" in config["families"] and level < wavelet["level"]:
        logger.info(
            "wavelet level %d > %d possible for %d samples: using %d.",
            wavelet["level"],
            max_level,
            n_times,
            level,
        )
    if "wavelet" in config["families"] and level < 1:
        raise ParameterError(
            "features.families",
            f"epochs of {n_times} samples are too short for a {wavelet['wavelet']} wavelet decomposition.",
            "drop 'wavelet' from features.families, or pick a shorter wavelet (features.wavelet.wavelet: haar).",
        )
    return FeaturePlan(
        float(sfreq), int(n_times), channels, acc_indices, nperseg, level, config, sfreq_known
    )


def channel_arrays(epochs: np.ndarray, plan: FeaturePlan) -> np.ndarray:
    """C-contiguous ``(n_epochs, n_plan_channels, n_times)``: the channels plus the acc magnitude.

    Float32 data stay float32 (half the memory traffic; the kernels sum in float64), other types
    become float32.
    """
    dtype = epochs.dtype if epochs.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    n_channels = epochs.shape[1]
    if epochs.dtype == dtype and epochs.flags.c_contiguous and len(plan.channels) == n_channels:
        return epochs
    x = np.empty((epochs.shape[0], len(plan.channels), epochs.shape[2]), dtype)
    x[:, :n_channels] = epochs  # one strided copy (np.ascontiguousarray is ~2x slower on views)
    if len(plan.channels) > n_channels:
        x[:, n_channels] = np.sqrt(np.sum(x[:, plan.acc_indices] ** 2, axis=1))
    return x
