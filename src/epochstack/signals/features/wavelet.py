"""Discrete wavelet features: one ``pywt.wavedec`` of all epochs and channels (``axis=-1``)."""

from __future__ import annotations

import numpy as np
import pywt

from epochstack.signals.features.config import ChannelPlan, FeaturePlan
from epochstack.signals.features.kernels_spectral import coefficient_rows

_STATS = ("energy", "relenergy", "meanabs", "std")


def _level_names(plan: FeaturePlan) -> list[str]:
    level = plan.wavelet_level
    return [f"a{level}"] + [f"d{level - i}" for i in range(level)]


def wavelet_columns(channel: ChannelPlan, plan: FeaturePlan) -> list[str]:
    """Column names of one channel's wavelet features (none for heart rate), in computation order."""
    if channel.channel_type == "hr":
        return []
    return [
        f"{channel.name}_wavelet_{stat}_{name}" for name in _level_names(plan) for stat in _STATS
    ]


def wavelet_features(x: np.ndarray, plan: FeaturePlan) -> dict[int, np.ndarray]:
    """Per channel index, a block of sub-band (``a<L>, d<L> ... d1``) energy, relative energy,
    mean |c| and std of c.

    Energy is ``sum(c**2) / n_times`` (signal unit squared): with an orthogonal wavelet and
    ``periodization`` the sub-band energies add up to the epoch's mean square.
    """
    config, floor = plan.config["wavelet"], plan.config["log_floor"]
    keep = [c for c, ch in enumerate(plan.channels) if ch.channel_type != "hr"]
    if not keep:
        return {}
    signals = x if len(keep) == x.shape[1] else x[:, keep]
    coeffs = pywt.wavedec(
        signals, config["wavelet"], mode=config["mode"], level=plan.wavelet_level, axis=-1
    )
    # (epochs, channels, level, [sum of squares, mean |c|, std]) from one kernel pass per level.
    summaries = np.empty(signals.shape[:2] + (len(coeffs), 3))
    for level, c in enumerate(coeffs):
        out = np.empty((c.shape[0] * c.shape[1], 3))
        coefficient_rows(np.ascontiguousarray(c).reshape(-1, c.shape[-1]), out)
        summaries[:, :, level] = out.reshape(c.shape[0], c.shape[1], 3)
    energy = summaries[..., 0] / x.shape[-1]
    total = np.maximum(energy.sum(axis=-1, keepdims=True), floor)
    block = np.stack([energy, energy / total, summaries[..., 1], summaries[..., 2]], axis=-1)
    block = block.reshape(block.shape[0], block.shape[1], -1)  # level-major: a5 stats, d5 stats...
    return {c: block[:, k] for k, c in enumerate(keep)}
