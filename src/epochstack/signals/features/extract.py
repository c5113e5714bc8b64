"""Feature extraction for one recording and for a whole epoch store."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.execution import Executor
from epochstack.signals.epoch_store import EpochStore
from epochstack.signals.features.config import (
    FeaturePlan,
    build_plan,
    channel_arrays,
    matching_columns,
)
from epochstack.signals.features.context import add_context_features
from epochstack.signals.features.spectral import spectral_columns, spectral_features
from epochstack.signals.features.time_domain import time_columns, time_domain_features
from epochstack.signals.features.wavelet import wavelet_columns, wavelet_features

logger = logging.getLogger(__name__)

# family -> (column names of one channel, per-channel blocks of a chunk of epochs)
FAMILY_FUNCTIONS = {
    "spectral": (spectral_columns, spectral_features),
    "time_domain": (time_columns, time_domain_features),
    "wavelet": (wavelet_columns, wavelet_features),
}


def feature_layout(plan: FeaturePlan) -> list[tuple[str, int, list[str]]]:
    """``(family, channel index, column names)`` blocks in column order: channels in plan order,
    families in ``features.families`` order within each channel."""
    layout = []
    for c, channel in enumerate(plan.channels):
        for family in plan.config["families"]:
            names = FAMILY_FUNCTIONS[family][0](channel, plan)
            if names:
                layout.append((family, c, names))
    return layout


def extract_with_plan(epochs: np.ndarray, plan: FeaturePlan) -> pd.DataFrame:
    """Features of ``epochs (n_epochs, n_channels, n_times)`` for a prepared plan.

    Works through ``chunk_epochs`` epochs at a time (all of them at once) to bound memory, on
    ``n_threads`` threads (the kernels, scipy.fft and PyWavelets release the GIL).
    Non-finite values left after the per-feature guards are set to 0 and counted in
    ``frame.attrs["n_nonfinite_replaced"]``.
    """
    if epochs.ndim != 3 or epochs.shape[2] != plan.n_times:
        raise ValueError(
            f"epochs have shape {epochs.shape}; expected (n_epochs, n_channels, {plan.n_times})."
        )
    if not len(epochs):
        raise ValueError("no epochs to extract features from.")
    layout = feature_layout(plan)
    offsets = np.cumsum([0] + [len(names) for _, _, names in layout])
    values = np.empty((len(epochs), offsets[-1]))

    def fill(start: int) -> None:
        x = channel_arrays(epochs[start : start + chunk], plan)
        blocks = {
            family: FAMILY_FUNCTIONS[family][1](x, plan) for family in plan.config["families"]
        }
        for (family, c, _), lo, hi in zip(layout, offsets[:-1], offsets[1:], strict=True):
            values[start : start + len(x), lo:hi] = blocks[family][c]

    n_threads = max(1, int(plan.config["n_threads"]))
    chunk = max(1, min(int(plan.config["chunk_epochs"]), -(-len(epochs) // n_threads)))
    starts = range(0, len(epochs), chunk)
    if n_threads == 1:
        for start in starts:
            fill(start)
    else:
        with ThreadPoolExecutor(n_threads) as threads:
            list(threads.map(fill, starts))
    names = [name for _, _, block in layout for name in block]
    if plan.config["select"]:
        keep = matching_columns(names, plan.config["select"])
        values, names = values[:, keep], [names[j] for j in keep]
    nonfinite = ~np.isfinite(values)
    values[nonfinite] = 0.0
    frame = pd.DataFrame(values, columns=names)
    frame.attrs["n_nonfinite_replaced"] = int(nonfinite.sum())
    return frame


def extract_features(
    epochs: np.ndarray,
    sfreq: float,
    channel_names: list[str],
    channel_types: list[str],
    config: dict | None,
) -> pd.DataFrame:
    """Per-epoch features of one recording (no context): columns ``<channel>_<family>_<detail>``.

    ``epochs``: ``(n_epochs, n_channels, n_times)``; ``config``: the ``features`` parameters
    (missing keys take the library defaults, see ``DEFAULT_CONFIG``).
    """
    plan = build_plan(sfreq, np.shape(epochs)[-1], channel_names, channel_types, config)
    return extract_with_plan(np.asarray(epochs), plan)


def _recording_features(
    task: tuple[EpochStore, str, pd.DataFrame, FeaturePlan],
) -> tuple[pd.DataFrame, dict]:
    """Features of one recording's ``epoch_table`` rows (a task for ``Executor.map``)."""
    store, recording_id, rows, plan = task
    started = time.perf_counter()
    signals = store[recording_id]
    signal_rows = rows["signal_row"].to_numpy(dtype=np.int64)
    if len(signal_rows) and signal_rows.max() >= len(signals):
        raise InputDataError(
            store.path / f"{recording_id}.npy",
            f"has {len(signals)} epochs but epoch_table asks for signal_row {signal_rows.max()}.",
            "re-run data_engineering so epoch_signals and epoch_table match.",
        )
    frame = extract_with_plan(signals[signal_rows], plan)
    frame.insert(0, "epoch_id", rows["epoch_id"].to_numpy())
    report = {
        "recording_id": recording_id,
        "n_epochs": len(frame),
        "seconds": time.perf_counter() - started,
        "n_nonfinite_replaced": frame.attrs["n_nonfinite_replaced"],
    }
    return frame, report


def compute_features_for_store(
    store: EpochStore,
    epoch_table: pd.DataFrame,
    config: dict | None,
    executor: Executor | dict | None = None,
    *,
    return_report: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Features (with context) of every ``epoch_table`` row, in its order, from ``store``.

    Recordings are tasks of ``executor`` (an ``Executor`` or the ``executor`` parameters block;
    default: one after another in this process): one recording in memory per worker, results
    equal on every backend. A store whose ``info.json`` says ``"sfreq_known": false`` gets rate-free
    features (see ``build_plan``); when every recording holds a single epoch (trial data), context
    features are skipped. With ``return_report``, also returns one row per recording:
    ``n_epochs``, ``seconds``, ``n_nonfinite_replaced``.
    """
    executor = Executor("local", None, 1) if executor is None else Executor.from_params(executor)
    _check_store_rows(store, epoch_table)
    sfreq_known = bool(store.info.get("sfreq_known", True))
    plan = build_plan(
        store.sfreq if sfreq_known else 1.0,
        store.n_times,
        store.channel_names,
        store.channel_types,
        config,
        sfreq_known=sfreq_known,
    )
    if not sfreq_known:
        logger.info(
            "Features: %s gives no sampling rate: rates are per sample, spectral bands are fractions of Nyquist "
            "(spectral.bands.misc) for every channel, Welch segments of %d samples, no line-noise features.",
            store.path,
            plan.nperseg,
        )
    recording_ids = epoch_table["recording_id"].astype(str)
    groups = list(epoch_table[["epoch_id", "signal_row"]].groupby(recording_ids, sort=False))
    if not store.path.is_absolute():  # workers of a cluster run elsewhere: an absolute path
        store = EpochStore(store.path.resolve())
    logger.info(
        "Features: %d recordings on the %s executor (%s).",
        len(groups),
        executor.backend,
        executor.address or f"{executor.n_workers} workers",
    )
    results = executor.map(
        _recording_features, [(store, rid, rows, plan) for rid, rows in groups], desc="features"
    )
    report = pd.DataFrame(
        [r for _, r in results],
        columns=["recording_id", "n_epochs", "seconds", "n_nonfinite_replaced"],
    )
    features = pd.concat([frame for frame, _ in results], ignore_index=True)
    # The per-recording pieces: one copy of the table fewer while context columns are added.
    del results
    order = pd.Index(features["epoch_id"]).get_indexer(epoch_table["epoch_id"])
    features = features.iloc[order].reset_index(drop=True)
    if recording_ids.duplicated().any():
        features = add_context_features(features, epoch_table, plan.config)
    elif plan.config["context"]["enabled"]:
        logger.info(
            "Features: every recording holds a single epoch (trial data): context features skipped."
        )
    logger.info(
        "Features: %d epochs x %d features from %d recordings; %d non-finite values replaced by 0.",
        len(features),
        features.shape[1] - 1,
        len(groups),
        int(report["n_nonfinite_replaced"].sum()),
    )
    return (features, report) if return_report else features


def _check_store_rows(store: EpochStore, epoch_table: pd.DataFrame) -> None:
    """Every recording of ``epoch_table`` is in ``store``, and the table has rows."""
    missing = sorted(set(epoch_table["recording_id"].astype(str)) - set(store.recording_ids))
    if missing:
        raise InputDataError(
            store.path,
            f"has no epochs for recordings {missing[:5]} of the epoch_table.",
            "re-run data_engineering.",
        )
    if epoch_table.empty:
        raise InputDataError(
            "epoch_table", "has no rows.", "re-run data_engineering; check its exclusion counts."
        )
