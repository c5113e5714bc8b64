"""On-disk store of epoch signals, one ``.npy`` per recording, read lazily (memory-mapped).

Layout of a store directory::

    info.json            sfreq (and whether the source gave it), channel names and types,
                         n_times, recording ids
    <recording_id>.npy   float32 (n_epochs, n_channels, n_times)

Row ``i`` of ``<recording_id>.npy`` is the epoch whose ``signal_row`` is ``i`` in the epoch
table. numpy's own ``.npy`` format with ``mmap_mode`` is all the storage this needs.

Writing is staged: recordings are written one at a time (by parallel workers, each holding one
recording) into a staging folder, which :meth:`StagedEpochStore.commit` swaps into place in one
rename. A failed run therefore never replaces an earlier good store, and memory never holds
more than a recording per worker. Recording ids become file names, so they are checked
(:func:`epochstack.ids.check_id`).
"""

from __future__ import annotations

import atexit
import json
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from epochstack.ids import check_id

INFO_FILE = "info.json"
# Staging folders of this process not yet committed: removed when a run fails or the process ends.
_UNCOMMITTED: set[Path] = set()


class EpochStore(Mapping):
    """Read-only mapping ``recording_id -> (n_epochs, n_channels, n_times)`` memory-mapped array."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        info_path = self.path / INFO_FILE
        if not info_path.exists():
            raise FileNotFoundError(
                f"{info_path}: no epoch store here; run the data_engineering pipeline first."
            )
        self.info = json.loads(info_path.read_text())

    @property
    def sfreq(self) -> float:
        return float(self.info["sfreq"])

    @property
    def sfreq_known(self) -> bool:
        """False when the source gave no sampling rate (``sfreq`` is then a nominal 1 Hz)."""
        return bool(self.info.get("sfreq_known", True))

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


def new_staging_dir(root: str | Path) -> Path:
    """A fresh, empty folder under ``root`` for one store being written."""
    path = Path(root).resolve() / f".epochs-staging-{uuid.uuid4().hex[:12]}"
    path.mkdir(parents=True, mode=0o755)
    _UNCOMMITTED.add(path)
    return path


@atexit.register
def discard_uncommitted() -> None:
    """Remove every staging folder of this process that was never committed."""
    for path in list(_UNCOMMITTED):
        shutil.rmtree(path, ignore_errors=True)
        _UNCOMMITTED.discard(path)


def stage_recording(
    staging_dir: str | Path, recording_id: str, epochs: np.ndarray, source: object = "epochs"
) -> int:
    """Write one recording's epochs into a staging folder; returns its number of epochs."""
    name = check_id(recording_id, source, "recording_id")
    array = np.asarray(epochs, dtype=np.float32)
    if array.ndim != 3:
        raise ValueError(
            f"epochs of {name} have shape {array.shape}; expected (n_epochs, n_channels, n_times)"
        )
    np.save(Path(staging_dir) / f"{name}.npy", array)
    return int(array.shape[0])


@dataclass
class StagedEpochStore:
    """A store written into ``staging_dir`` but not yet in place (see :meth:`commit`)."""

    staging_dir: Path
    sfreq: float
    channel_names: list[str]
    channel_types: list[str]
    n_times: int
    recording_ids: list[str]
    sfreq_known: bool = True
    extra: dict = field(default_factory=dict)

    def info(self) -> dict:
        return {
            "sfreq": float(self.sfreq),
            "sfreq_known": bool(self.sfreq_known),
            "channel_names": list(self.channel_names),
            "channel_types": list(self.channel_types),
            "n_times": int(self.n_times),
            "recording_ids": list(self.recording_ids),
            **self.extra,
        }

    def open(self) -> EpochStore:
        """The staged store, readable where it is (e.g. for inference on a temporary store)."""
        (Path(self.staging_dir) / INFO_FILE).write_text(json.dumps(self.info(), indent=2))
        return EpochStore(self.staging_dir)

    def commit(self, path: str | Path) -> EpochStore:
        """Move the staged store to ``path`` in one rename, replacing any store there."""
        staging, path = Path(self.staging_dir), Path(path)
        missing = [r for r in self.recording_ids if not (staging / f"{r}.npy").exists()]
        if missing:
            raise FileNotFoundError(
                f"{staging}: staged recordings {missing[:3]} are missing; nothing was committed."
            )
        self.open()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
            path.rename(old)
            shutil.move(str(staging), str(path))
            shutil.rmtree(old, ignore_errors=True)
        else:
            shutil.move(str(staging), str(path))
        _UNCOMMITTED.discard(staging)
        return EpochStore(path)

    def discard(self) -> None:
        shutil.rmtree(self.staging_dir, ignore_errors=True)
        _UNCOMMITTED.discard(Path(self.staging_dir))


def write_epoch_store(
    path: str | Path,
    epochs: Mapping[str, np.ndarray | Callable[[], np.ndarray]],
    *,
    sfreq: float,
    channel_names: list[str],
    channel_types: list[str],
    sfreq_known: bool = True,
) -> EpochStore:
    """Write a store from arrays (or callables returning them, computed one at a time).

    Staged beside ``path`` and committed in one rename: a failed write never replaces an
    earlier good store.
    """
    path = Path(path)
    staging = new_staging_dir(path.parent)
    try:
        n_times = None
        for recording_id, value in epochs.items():
            array = np.asarray(value() if callable(value) else value, dtype=np.float32)
            if array.ndim != 3 or array.shape[1] != len(channel_names):
                raise ValueError(
                    f"epochs of {recording_id} have shape {array.shape}; expected (n_epochs, {len(channel_names)}, n_times)"
                )
            if n_times is not None and array.shape[2] != n_times:
                raise ValueError(
                    f"epochs of {recording_id} have {array.shape[2]} samples; others have {n_times}"
                )
            n_times = array.shape[2]
            stage_recording(staging, recording_id, array)
        staged = StagedEpochStore(
            staging,
            sfreq,
            list(channel_names),
            list(channel_types),
            int(n_times or 0),
            list(epochs),
            sfreq_known,
        )
        return staged.commit(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _UNCOMMITTED.discard(staging)
        raise
