"""Epoch features: spectral, time-domain, wavelet and context (Kedro-free).

Entry points::

    extract_features(epochs, sfreq, channel_names, channel_types, config)  # one recording
    add_context_features(features, epoch_table, config)                    # per recording
    compute_features_for_store(store, epoch_table, config, executor)       # everything

Per-epoch statistics run in numba kernels (``kernels.py``), the spectra in ``scipy.fft``.

Columns are ``<channel>_<family>_<detail>`` (``docs/features.md`` defines each one).
"""

from epochstack.signals.features.config import DEFAULT_CONFIG, resolve_config, sanitize_name
from epochstack.signals.features.context import add_context_features
from epochstack.signals.features.extract import compute_features_for_store, extract_features

__all__ = [
    "DEFAULT_CONFIG",
    "add_context_features",
    "compute_features_for_store",
    "extract_features",
    "resolve_config",
    "sanitize_name",
]
