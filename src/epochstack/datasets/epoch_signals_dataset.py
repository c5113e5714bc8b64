"""Kedro dataset for :class:`~epochstack.signals.epoch_store.EpochStore` (lazy epoch signals)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from epochstack.signals.epoch_store import EpochStore, write_epoch_store


class EpochSignalsDataset(AbstractDataset[dict, EpochStore]):
    """Saves ``{"epochs": {recording_id: array | callable}, "sfreq", "channel_names", "channel_types"}``.

    Loads an :class:`EpochStore`: recordings are memory-mapped on access, never read whole.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> EpochStore:
        return EpochStore(self._path)

    def save(self, data: dict | EpochStore) -> None:
        if isinstance(data, EpochStore):
            data = {
                "epochs": {rid: data[rid] for rid in data.recording_ids},
                "sfreq": data.sfreq,
                "channel_names": data.channel_names,
                "channel_types": data.channel_types,
            }
        write_epoch_store(
            self._path,
            data["epochs"],
            sfreq=data["sfreq"],
            channel_names=data["channel_names"],
            channel_types=data["channel_types"],
        )

    def _exists(self) -> bool:
        return (self._path / "info.json").exists()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
