"""Discrete wavelet features: one ``pywt.wavedec`` of all epochs and channels (``axis=-1``)."""

from __future__ import annotations

import numpy as np
import pywt

from epochstack.signals.features.config import FeaturePlan


def wavelet_features(x: np.ndarray, plan: FeaturePlan) -> dict[str, np.ndarray]:
    """Per sub-band (``a<L>, d<L> ... d1``): energy, relative energy, mean |c|, std of c.

    Energy is ``sum(c**2) / n_times`` (signal unit squared): with an orthogonal wavelet and
    ``periodization`` the sub-band energies add up to the epoch's mean square.
    """
    config, floor = plan.config["wavelet"], plan.config["log_floor"]
    keep = [c for c, ch in enumerate(plan.channels) if ch.channel_type != "hr"]
    if not keep:
        return {}
    level = plan.wavelet_level
    signals = x if len(keep) == x.shape[1] else x[:, keep]
    coeffs = pywt.wavedec(signals, config["wavelet"], mode=config["mode"], level=level, axis=-1)
    names = [f"a{level}"] + [f"d{level - i}" for i in range(level)]
    energies = [np.sum(c**2, axis=-1) / x.shape[-1] for c in coeffs]
    total = np.maximum(np.sum(energies, axis=0), floor)
    stats = {
        (stat, name): values
        for name, c, energy in zip(names, coeffs, energies, strict=True)
        for stat, values in (
            ("energy", energy), ("relenergy", energy / total),
            ("meanabs", np.abs(c).mean(axis=-1)), ("std", c.std(axis=-1)),
        )
    }
    out: dict[str, np.ndarray] = {}
    for k, channel_index in enumerate(keep):
        prefix = f"{plan.channels[channel_index].name}_wavelet"
        for (stat, name), values in stats.items():
            out[f"{prefix}_{stat}_{name}"] = values[:, k]
    return out
