"""A deep network as an :class:`~epochstack.models.engine.EpochModel`: the out-of-fold engine,
the stack and inference treat it like any other base model.

``fit`` trains on the given rows, early-stopping on whole subjects drawn from them (so the
engine's leakage check covers validation epochs too), and keeps the best weights with the
metadata to rebuild the network (no optimiser state). Checkpoints for resuming a killed run go
to a folder named after the model's configuration and a content hash of its rows, so changed
settings or data never resume stale weights.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from epochstack.models.deep.data import (
    EpochReader,
    EpochSequenceDataset,
    Normalisation,
    channel_indices,
    robust_statistics,
)
from epochstack.models.deep.export import (
    check_store,
    model_metadata,
    network_from,
    normalisation_from,
    predict_table,
)
from epochstack.models.deep.networks import build_network, network_context
from epochstack.models.deep.training import (
    DeepModelConfig,
    PassRecord,
    TrainingResult,
    seed_everything,
    train,
    training_settings,
)
from epochstack.models.engine import EpochData, EpochModel
from epochstack.models.signal_models import read_epochs
from epochstack.models.tuning import data_fingerprint, digest

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def torch_threads(n_threads: int | None):
    """Run with ``n_threads`` torch CPU threads (small convolutions often run best on one)."""
    previous = torch.get_num_threads()
    if n_threads:
        torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_normalisation(method: str, data: EpochData) -> str:
    """``auto``: per-channel training-set statistics when every recording is one epoch (trials),
    per-recording statistics otherwise (nights)."""
    if method != "auto":
        return method
    one_epoch_each = data.table.groupby("recording_id").size().max() == 1
    return "training_set" if one_epoch_each else "robust"


def choose_validation_subjects(
    subjects: Sequence[str], fraction: float, minimum: int, seed: int
) -> list[str]:
    """Whole subjects held out of a training pool for early stopping: ``fraction`` of them, at
    least ``minimum``, always leaving at least one subject to train on."""
    unique = sorted({str(s) for s in subjects})
    n = min(max(int(minimum), int(np.ceil(float(fraction) * len(unique)))), len(unique) - 1)
    if n <= 0:
        return []
    return sorted(np.random.default_rng(seed).choice(unique, size=n, replace=False).tolist())


def fit_model(
    config: DeepModelConfig,
    build: Callable[[], nn.Module],
    reader: EpochReader,
    pool: pd.DataFrame,
    classes: list[str],
    *,
    sfreq: float,
    device: str | torch.device = "auto",
    checkpoint_dir: str | Path | None = None,
    callbacks: Sequence[Callable[[PassRecord], None]] = (),
    description: str = "train",
    identity: dict | None = None,
) -> TrainingResult:
    """Build a network (weights drawn from ``config.seed``) and train it on a pool of labelled
    epochs, early-stopping on whole subjects taken from that pool."""
    seed_everything(config.seed)
    network = build()
    held_out = choose_validation_subjects(
        pool["subject_id"], config.validation_fraction, config.min_validation_subjects, config.seed
    )
    is_val = pool["subject_id"].astype(str).isin(held_out).to_numpy()
    if not held_out:
        logger.warning(
            "%s: a single training subject, so no validation subjects: the last pass is kept.",
            description,
        )
    context = network_context(network)
    length = int(training_settings(config.training)["sequence_length"])
    train_set = EpochSequenceDataset(reader, pool[~is_val], classes, context, length)
    val_set = EpochSequenceDataset(reader, pool[is_val], classes, context, 1) if held_out else None
    result = train(
        network,
        train_set,
        val_set,
        config.training,
        seed=config.seed,
        sfreq=sfreq,
        device=device,
        checkpoint_dir=checkpoint_dir,
        callbacks=callbacks,
        description=description,
        identity={"config": config.to_dict(), **(identity or {})},
    )
    result.train_epoch_ids = pool.loc[~is_val, "epoch_id"].astype(str).to_numpy(dtype=object)
    result.val_epoch_ids = pool.loc[is_val, "epoch_id"].astype(str).to_numpy(dtype=object)
    return result


class DeepModel(EpochModel):
    """One network of ``deep_models.networks``, trained on the rows it is fitted on."""

    reads = "signals"

    def __init__(
        self,
        config: DeepModelConfig,
        classes: list[str],
        *,
        device: str = "auto",
        checkpoint_root: str | Path | None = None,
        torch_threads: int | None = None,
    ):
        self.config, self.classes = config, list(classes)
        self.device, self.torch_threads = device, torch_threads
        self.checkpoint_root = checkpoint_root

    def _normalisation(
        self, data: EpochData, rows: np.ndarray, channels: np.ndarray
    ) -> Normalisation:
        method = resolve_normalisation(self.config.normalisation, data)
        if method != "training_set":
            return Normalisation(method, self.config.clip)
        sample = np.sort(
            np.random.default_rng(self.config.seed).choice(
                rows, size=min(len(rows), 2000), replace=False
            )
        )
        centre, scale = robust_statistics(read_epochs(data, sample)[:, channels])
        return Normalisation(
            method, self.config.clip, tuple(centre.tolist()), tuple(scale.tolist())
        )

    def fit(self, data: EpochData, rows: np.ndarray) -> DeepModel:
        rows = np.asarray(rows)
        store = data.signals
        channels = channel_indices(store, self.config.channels)
        normalisation = self._normalisation(data, rows, channels)
        reader = EpochReader(store, channels, normalisation)
        identity = {"data": data_fingerprint(data, rows), "normalisation": normalisation.method}
        checkpoints = (
            Path(self.checkpoint_root) / digest([self.config.to_dict(), identity])
            if self.checkpoint_root
            else None
        )
        build = partial(
            build_network,
            self.config.architecture,
            self.config.network,
            len(channels),
            len(self.classes),
            store.n_times,
        )
        with torch_threads(self.torch_threads):
            result = fit_model(
                self.config,
                build,
                reader,
                data.table.iloc[rows],
                self.classes,
                sfreq=store.sfreq,
                device=self.device,
                checkpoint_dir=checkpoints,
                description=f"{self.config.name} on {len(rows)} epochs",
                identity=identity,
            )
        self.state_dict_ = {
            k: v.detach().cpu().clone() for k, v in result.network.state_dict().items()
        }
        config = self.config
        self.metadata_ = model_metadata(
            config.architecture, config.network, self.classes, store, channels, normalisation
        )
        # Per-pass wall time is not a result: left out, so identical training compares equal.
        self.history_ = [
            {k: v for k, v in vars(r).items() if k != "seconds"} for r in result.history
        ]
        self.best_pass_, self.best_score_ = result.best_pass, result.best_score
        self.resumed_at_ = result.resumed_at
        self.n_train_, self.n_validation_ = len(result.train_epoch_ids), len(result.val_epoch_ids)
        seen = np.concatenate([result.train_epoch_ids, result.val_epoch_ids])
        self.seen_epoch_ids = seen.astype(str)
        self._network = result.network.eval()
        return self

    @property
    def network(self) -> torch.nn.Module:
        if getattr(self, "_network", None) is None:
            self._network = network_from(self.metadata_, self.state_dict_)
        return self._network

    def predict_proba(self, data: EpochData, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        if len(rows) == 0:
            return np.empty((0, len(self.classes)))
        index = check_store(self.metadata_, data.signals, self.config.name)
        reader = EpochReader(data.signals, index, normalisation_from(self.metadata_))
        length = int(training_settings(self.config.training)["predict_length"])
        with torch_threads(self.torch_threads):
            return predict_table(self.network, reader, data.table.iloc[rows], self.device, length)

    def report(self) -> dict:
        return {
            "best_pass": self.best_pass_,
            "best_score": self.best_score_,
            "resumed_at": self.resumed_at_,
            "n_train": self.n_train_,
            "n_validation": self.n_validation_,
            "history": self.history_,
        }

    def __getstate__(self):
        """Weights travel as numpy arrays (the rebuilt network is a cache; a pickled torch tensor
        embeds its memory address), and a fitted model leaves out its training-time checkpoint
        folder: identical training pickles to identical bytes wherever the project lives."""
        state = {**self.__dict__, "_network": None}
        if "state_dict_" in state:
            state["state_dict_"] = {k: v.numpy() for k, v in self.state_dict_.items()}
            state["checkpoint_root"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        if "state_dict_" in state:
            weights = {k: torch.from_numpy(np.asarray(v)) for k, v in state["state_dict_"].items()}
            state = {**state, "state_dict_": weights}
        self.__dict__.update(state)
