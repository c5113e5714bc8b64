"""On-disk store of epoch signals, one ``.npy`` per recording, read lazily (memory-mapped).

Layout of a store directory::

    info.json            sfreq, channel names and types, n_times, recording ids
    <recording_id>.npy   float32 (n_epochs, n_channels, n_times)

Row ``i`` of ``<recording_id>.npy`` is the epoch whose ``signal_row`` is ``i`` in the epoch
table. numpy's own ``.npy`` format with ``mmap_mode`` is all the storage this needs.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np


class EpochStore(Mapping):
    """Read-only mapping ``recording_id -> (n_epochs, n_channels, n_times)`` memory-mapped array."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        info_path = self.path / "info.json"
        if not info_path.exists():
            raise FileNotFoundError(f"{info_path}: no epoch store here; run the data_engineering pipeline first.")
        self.info = json.loads(info_path.read_text())

    @property
    def sfreq(self) -> float:
        return float(self.info["sfreq"])

    @property
    def channel_names(self) -> list[str]:
        return list(self.info["channel_names"])

    @property
    def channel_types(self) -> list[str]:
        return list(self.info["channel_types"])

    @property
    def n_times(self) -> int:
        return int(self.info["n_times"])

    @property
    def recording_ids(self) -> list[str]:
        return list(self.info["recording_ids"])

    def __getitem__(self, recording_id: str) -> np.ndarray:
        if recording_id not in self.info["recording_ids"]:
            raise KeyError(recording_id)
        return np.load(self.path / f"{recording_id}.npy", mmap_mode="r")

    def __iter__(self) -> Iterator[str]:
        return iter(self.recording_ids)

    def __len__(self) -> int:
        return len(self.info["recording_ids"])

    def __repr__(self) -> str:
        return f"EpochStore({self.path}, {len(self)} recordings, {len(self.channel_names)} channels @ {self.sfreq} Hz)"


def write_epoch_store(
    path: str | Path,
    epochs: Mapping[str, np.ndarray | Callable[[], np.ndarray]],
    *,
    sfreq: float,
    channel_names: list[str],
    channel_types: list[str],
) -> EpochStore:
    """Write a store atomically: a failed write never replaces an earlier good store.

    ``epochs`` values may be arrays or callables returning arrays (computed one at a time).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        n_times = None
        for recording_id, value in epochs.items():
            array = np.asarray(value() if callable(value) else value, dtype=np.float32)
            if array.ndim != 3 or array.shape[1] != len(channel_names):
                raise ValueError(f"epochs of {recording_id} have shape {array.shape}; expected (n_epochs, {len(channel_names)}, n_times)")
            if n_times is not None and array.shape[2] != n_times:
                raise ValueError(f"epochs of {recording_id} have {array.shape[2]} samples; others have {n_times}")
            n_times = array.shape[2]
            np.save(tmp / f"{recording_id}.npy", array)
        info = {
            "sfreq": float(sfreq),
            "channel_names": list(channel_names),
            "channel_types": list(channel_types),
            "n_times": int(n_times or 0),
            "recording_ids": list(epochs.keys()),
        }
        (tmp / "info.json").write_text(json.dumps(info, indent=2))
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return EpochStore(path)
