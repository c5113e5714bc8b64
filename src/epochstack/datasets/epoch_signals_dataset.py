"""Kedro dataset for :class:`~epochstack.signals.epoch_store.EpochStore` (lazy epoch signals)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from epochstack.signals.epoch_store import EpochStore, StagedEpochStore, write_epoch_store


class EpochSignalsDataset(AbstractDataset[dict | StagedEpochStore | EpochStore, EpochStore]):
    """Loads an :class:`EpochStore`: recordings are memory-mapped on access, never read whole.

    Saves a :class:`StagedEpochStore` (written recording by recording by the data_engineering
    workers) by moving it into place in one rename, or an in-memory
    ``{"epochs": {recording_id: array}, "sfreq", "channel_names", "channel_types"}``.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> EpochStore:
        return EpochStore(self._path)

    def save(self, data: dict | StagedEpochStore | EpochStore) -> None:
        if isinstance(data, StagedEpochStore):
            data.commit(self._path)
            return
        if isinstance(data, EpochStore):
            if data.path.resolve() == self._path.resolve():
                return
            data = {
                "epochs": {rid: data[rid] for rid in data.recording_ids},
                "sfreq": data.sfreq,
                "sfreq_known": data.sfreq_known,
                "channel_names": data.channel_names,
                "channel_types": data.channel_types,
            }
        write_epoch_store(
            self._path,
            data["epochs"],
            sfreq=data["sfreq"],
            channel_names=data["channel_names"],
            channel_types=data["channel_types"],
            sfreq_known=data.get("sfreq_known", True),
        )

    def _exists(self) -> bool:
        return (self._path / "info.json").exists()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
