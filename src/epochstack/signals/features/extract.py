"""Feature extraction for one recording and for a whole epoch store."""

from __future__ import annotations

import logging
import time
from fnmatch import fnmatchcase

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from epochstack.errors import InputDataError
from epochstack.signals.epoch_store import EpochStore
from epochstack.signals.features.config import FeaturePlan, build_plan, channel_arrays
from epochstack.signals.features.context import add_context_features
from epochstack.signals.features.spectral import spectral_features
from epochstack.signals.features.time_domain import time_domain_features
from epochstack.signals.features.wavelet import wavelet_features

logger = logging.getLogger(__name__)

FAMILY_FUNCTIONS = {"spectral": spectral_features, "time_domain": time_domain_features, "wavelet": wavelet_features}


def _select(columns: list[str], patterns: list[str] | None) -> list[str]:
    if not patterns:
        return columns
    return [c for c in columns if any(fnmatchcase(c, p) for p in patterns)]


def _chunk_features(epochs: np.ndarray, plan: FeaturePlan) -> dict[str, np.ndarray]:
    x = channel_arrays(epochs, plan)
    columns: dict[str, np.ndarray] = {}
    for family in plan.config["families"]:
        columns.update(FAMILY_FUNCTIONS[family](x, plan))
    return columns


def extract_with_plan(epochs: np.ndarray, plan: FeaturePlan) -> pd.DataFrame:
    """Features of ``epochs (n_epochs, n_channels, n_times)`` for a prepared plan.

    Works through ``chunk_epochs`` epochs at a time (all of them vectorised) to bound memory,
    on ``n_threads`` threads.
    Non-finite values left after the per-feature guards are set to 0 and counted in
    ``frame.attrs["n_nonfinite_replaced"]``.
    """
    if epochs.ndim != 3 or epochs.shape[2] != plan.n_times:
        raise ValueError(f"epochs have shape {epochs.shape}; expected (n_epochs, n_channels, {plan.n_times}).")
    n_threads = max(1, int(plan.config["n_threads"]))
    chunk = max(1, min(int(plan.config["chunk_epochs"]), -(-len(epochs) // n_threads)))
    # numpy, scipy.fft and PyWavelets release the GIL, so threads share the work of one recording.
    parts = Parallel(n_jobs=n_threads, prefer="threads")(
        delayed(_chunk_features)(epochs[start:start + chunk], plan) for start in range(0, len(epochs), chunk)
    )
    if not parts:
        raise ValueError("no epochs to extract features from.")
    names = _select(_channel_order(list(parts[0]), plan), plan.config["select"])
    values = np.column_stack([np.concatenate([p[n] for p in parts]) for n in names]) if names else np.empty((len(epochs), 0))
    nonfinite = ~np.isfinite(values)
    values[nonfinite] = 0.0
    frame = pd.DataFrame(values, columns=names)
    frame.attrs["n_nonfinite_replaced"] = int(nonfinite.sum())
    return frame


def _channel_order(names: list[str], plan: FeaturePlan) -> list[str]:
    """Columns grouped by channel (plan order), families in computation order within each."""
    rank = {f"{ch.name}_": i for i, ch in enumerate(plan.channels)}
    # Longest prefix first so "acc_x" never claims "acc_x2_..." columns.
    prefixes = sorted(rank, key=len, reverse=True)
    return sorted(names, key=lambda n: next(rank[p] for p in prefixes if n.startswith(p)))


def extract_features(epochs: np.ndarray, sfreq: float, channel_names: list[str], channel_types: list[str], config: dict | None) -> pd.DataFrame:
    """Per-epoch features of one recording (no context): columns ``<channel>_<family>_<detail>``.

    ``epochs``: ``(n_epochs, n_channels, n_times)``; ``config``: the ``features`` parameters
    (missing keys take the library defaults, see ``DEFAULT_CONFIG``).
    """
    plan = build_plan(sfreq, np.shape(epochs)[-1], channel_names, channel_types, config)
    return extract_with_plan(np.asarray(epochs), plan)


def _recording_features(store: EpochStore, recording_id: str, rows: pd.DataFrame, plan: FeaturePlan) -> tuple[pd.DataFrame, dict]:
    started = time.perf_counter()
    signals = store[recording_id]
    signal_rows = rows["signal_row"].to_numpy(dtype=np.int64)
    if len(signal_rows) and signal_rows.max() >= len(signals):
        raise InputDataError(
            store.path / f"{recording_id}.npy", f"has {len(signals)} epochs but epoch_table asks for signal_row {signal_rows.max()}.",
            "re-run data_engineering so epoch_signals and epoch_table match.",
        )
    frame = extract_with_plan(signals[signal_rows], plan)
    frame.insert(0, "epoch_id", rows["epoch_id"].to_numpy())
    report = {
        "recording_id": recording_id, "n_epochs": len(frame), "seconds": time.perf_counter() - started,
        "n_nonfinite_replaced": frame.attrs["n_nonfinite_replaced"],
    }
    return frame, report


def compute_features_for_store(
    store: EpochStore, epoch_table: pd.DataFrame, config: dict | None, n_jobs: int = 1, *, return_report: bool = False
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Features (with context) of every ``epoch_table`` row, in its order, from ``store``.

    Recordings run in parallel (``n_jobs`` joblib workers, one recording in memory per worker).
    With ``return_report``, also returns one row per recording: ``n_epochs``, ``seconds``,
    ``n_nonfinite_replaced``.
    """
    missing = sorted(set(epoch_table["recording_id"].astype(str)) - set(store.recording_ids))
    if missing:
        raise InputDataError(store.path, f"has no epochs for recordings {missing[:5]} of the epoch_table.", "re-run data_engineering.")
    if epoch_table.empty:
        raise InputDataError("epoch_table", "has no rows.", "re-run data_engineering; check its exclusion counts.")
    plan = build_plan(store.sfreq, store.n_times, store.channel_names, store.channel_types, config)
    groups = list(epoch_table.groupby(epoch_table["recording_id"].astype(str), sort=False))
    jobs = (delayed(_recording_features)(store, rid, rows, plan) for rid, rows in groups)
    results = list(tqdm(
        Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")(jobs),
        total=len(groups), desc="features", unit="recording", disable=None,
    ))
    features = pd.concat([frame for frame, _ in results], ignore_index=True)
    order = pd.Index(features["epoch_id"]).get_indexer(epoch_table["epoch_id"])
    features = add_context_features(features.iloc[order].reset_index(drop=True), epoch_table, plan.config)
    report = pd.DataFrame([r for _, r in results], columns=["recording_id", "n_epochs", "seconds", "n_nonfinite_replaced"])
    logger.info(
        "Features: %d epochs x %d features from %d recordings; %d non-finite values replaced by 0.",
        len(features), features.shape[1] - 1, len(groups), int(report["n_nonfinite_replaced"].sum()),
    )
    return (features, report) if return_report else features
