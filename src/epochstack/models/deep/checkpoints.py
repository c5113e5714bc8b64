"""``best.pt`` (best weights) and ``last.pt`` (state dicts, run state, fingerprint) of one
training run: atomic writes; resumed only when the fingerprint matches, else trained afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch

logger = logging.getLogger(__name__)


def fingerprint(*parts) -> str:
    """A short content hash of JSON-able ``parts`` (what a checkpoint must belong to)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def atomic_save(payload: dict, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a killed run never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial_path = path.with_name(f".{path.name}.partial")
    torch.save(payload, partial_path)
    partial_path.replace(path)


class Checkpoints:
    """The checkpoints of one run in ``directory`` (None: nothing is read or written)."""

    def __init__(self, directory: str | Path | None, fingerprint: str, description: str):
        directory = Path(directory) if directory else None
        self.last = directory / "last.pt" if directory else None
        self.best = directory / "best.pt" if directory else None
        self.fingerprint, self.description = fingerprint, description

    def resume(self, parts: dict, device: torch.device) -> dict | None:
        """Load ``parts`` (name -> object with ``load_state_dict``) from ``last.pt`` and return
        the saved run state when the file belongs to this very model and data, else None."""
        if self.last is None or not self.last.exists():
            return None
        try:
            saved = torch.load(self.last, map_location=device, weights_only=False)
            if saved.get("fingerprint") != self.fingerprint:
                logger.info(
                    "%s: %s belongs to other settings or data; training from scratch.",
                    self.description,
                    self.last,
                )
                return None
            for name, part in parts.items():
                part.load_state_dict(saved[name])
        except (RuntimeError, KeyError, ValueError, EOFError, OSError) as error:
            logger.info(
                "%s: %s cannot be resumed (%s); training from scratch.",
                self.description,
                self.last,
                str(error).splitlines()[0],
            )
            return None
        return saved["state"]

    def best_weights(self) -> dict | None:
        """The weights saved in ``best.pt`` (on the CPU), or None without one."""
        if self.best is None or not self.best.exists():
            return None
        return torch.load(self.best, map_location="cpu", weights_only=False)["network"]

    def save_best(self, weights: dict, pass_index: int, score: float) -> None:
        if self.best is not None:
            atomic_save({"network": weights, "pass": pass_index, "score": score}, self.best)

    def save_last(self, parts: dict, state: dict) -> None:
        """``last.pt``: the state dicts of ``parts``, the run state and the fingerprint."""
        if self.last is not None:
            payload = {name: part.state_dict() for name, part in parts.items()}
            atomic_save({**payload, "state": state, "fingerprint": self.fingerprint}, self.last)
