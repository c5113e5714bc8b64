"""Epoch sequences for the deep networks, read lazily from an :class:`EpochStore`.

An item is a *chunk*: ``L`` consecutive target epochs of one recording plus ``k`` context epochs
on each side, ``(L + 2k, n_channels, n_times)``. Context never crosses a recording: at the
recording's ends the first/last epoch is repeated (edge replication). Rows are read from the
memory-mapped ``.npy`` of their recording only when asked for. Nights are normalised by their
own robust per-channel statistics (median, IQR), computed once per recording; trial datasets
(one epoch per recording) by per-channel statistics of the training epochs, stored with the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from epochstack.errors import InputDataError
from epochstack.signals.epoch_store import EpochStore

IGNORE_INDEX = -100  # cross-entropy's ignore_index: padded targets of short chunks
IQR_TO_SD = 1.349  # IQR of a normal distribution in standard deviations
STATISTICS_EPOCHS = 200  # evenly spaced epochs of a recording its statistics are computed on


def channel_indices(store: EpochStore, channels: list[str] | None) -> np.ndarray:
    """Positions of the named channels (or channel types) in the store; ``None`` keeps all."""
    if not channels:
        return np.arange(len(store.channel_names))
    index = []
    for name in channels:
        matches = [
            i
            for i, (ch, kind) in enumerate(
                zip(store.channel_names, store.channel_types, strict=True)
            )
            if name in (ch, kind)
        ]
        if not matches:
            raise InputDataError(
                f"{store.path}/info.json",
                f"has no channel or channel type {name!r} (channels: {store.channel_names}).",
                "fix deep_models.networks.<model>.channels.",
            )
        index += [i for i in matches if i not in index]
    return np.asarray(index)


NORMALISATIONS = ("auto", "robust", "training_set", "none")


@dataclass(frozen=True)
class Normalisation:
    """Scaling ``(x - median) / (IQR / 1.349)`` per channel, then clipping.

    ``robust``: statistics of each recording itself; ``training_set``: the fixed ``centre`` and
    ``scale`` given (fitted on training epochs); ``none``: no scaling.
    """

    method: str = "robust"
    clip: float | None = 20.0
    centre: tuple[float, ...] | None = None
    scale: tuple[float, ...] | None = None

    def statistics(self, recording: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(centre, scale)`` per channel for one recording's epochs ``(n_epochs, n_ch, n_times)``."""
        n_channels = recording.shape[1]
        if self.method == "none":
            return np.zeros(n_channels, np.float32), np.ones(n_channels, np.float32)
        if self.method == "training_set":
            return np.asarray(self.centre, np.float32), np.asarray(self.scale, np.float32)
        if self.method != "robust":
            raise InputDataError(
                "deep_models.data.normalisation",
                f"unknown method {self.method!r}.",
                f"use one of {list(NORMALISATIONS)}.",
            )
        return robust_statistics(recording)

    def apply(self, epochs: np.ndarray, centre: np.ndarray, scale: np.ndarray) -> np.ndarray:
        out = (epochs - centre[:, None]) / scale[:, None]
        if self.clip:
            np.clip(out, -self.clip, self.clip, out=out)
        return out.astype(np.float32, copy=False)


def robust_statistics(epochs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel median and IQR / 1.349 of epochs ``(n_epochs, n_ch, n_times)`` (evenly sampled)."""
    n_channels = epochs.shape[1]
    step = max(1, epochs.shape[0] // STATISTICS_EPOCHS)
    per_channel = np.moveaxis(np.asarray(epochs[::step]), 1, 0).reshape(n_channels, -1)
    q25, median, q75 = np.percentile(per_channel, [25, 50, 75], axis=1)
    scale = (q75 - q25) / IQR_TO_SD
    scale[~(scale > 0)] = 1.0  # flat channel: leave it at zero rather than divide by zero
    return median.astype(np.float32), scale.astype(np.float32)


class EpochReader:
    """Normalised epochs of a store by (recording, rows); statistics cached per recording."""

    def __init__(self, store: EpochStore, channels: np.ndarray, normalisation: Normalisation):
        self.store = store
        self.channels = np.asarray(channels)
        self.normalisation = normalisation
        self.statistics: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._arrays: dict[str, np.ndarray] = {}

    def __getstate__(self):  # memory maps are reopened in each DataLoader worker, never pickled
        return {**self.__dict__, "_arrays": {}}

    def array(self, recording_id: str) -> np.ndarray:
        if recording_id not in self._arrays:
            self._arrays[recording_id] = self.store[recording_id]
        return self._arrays[recording_id]

    def n_rows(self, recording_id: str) -> int:
        return self.array(recording_id).shape[0]

    def read(self, recording_id: str, rows: np.ndarray) -> np.ndarray:
        """Rows ``(n, n_channels, n_times)``, normalised by their recording's own statistics."""
        array = self.array(recording_id)
        if recording_id not in self.statistics:
            self.statistics[recording_id] = self.normalisation.statistics(array[:, self.channels])
        centre, scale = self.statistics[recording_id]
        epochs = np.asarray(array[np.asarray(rows)])[:, self.channels]
        return self.normalisation.apply(epochs, centre, scale)


def label_codes(labels: pd.Series, classes: list[str]) -> np.ndarray:
    """Class indices in ``classes`` order; unlabelled epochs get ``IGNORE_INDEX``."""
    position = {c: i for i, c in enumerate(classes)}
    return np.array(
        [position.get(str(v), IGNORE_INDEX) if pd.notna(v) else IGNORE_INDEX for v in labels],
        dtype=np.int64,
    )


def contiguous_runs(signal_rows: np.ndarray) -> list[np.ndarray]:
    """Positions (into the sorted rows) of each run of consecutive store rows."""
    breaks = np.flatnonzero(np.diff(signal_rows) != 1) + 1
    return np.split(np.arange(len(signal_rows)), breaks)


@dataclass(frozen=True)
class Chunk:
    recording_id: str
    rows: np.ndarray  # store rows of the L targets (edge-replicated in short runs)
    targets: np.ndarray  # positions in the dataset's table, IGNORE_INDEX-padded in short runs


def make_chunks(table: pd.DataFrame, length: int, pad: bool) -> list[Chunk]:
    """Chunks of ``length`` consecutive epochs per recording, never crossing a recording.

    ``pad``: every chunk has exactly ``length`` targets (the last chunk of a run overlaps the
    one before; runs shorter than ``length`` repeat their last epoch, marked as padding).
    Otherwise chunks simply end with their run (for prediction).
    """
    chunks = []
    positions = np.arange(len(table))
    for recording_id, rows in table.groupby("recording_id", sort=True).indices.items():
        order = rows[np.argsort(table["signal_row"].to_numpy()[rows], kind="stable")]
        signal_rows = table["signal_row"].to_numpy()[order]
        for run in contiguous_runs(signal_rows):
            starts = range(0, len(run), length)
            for start in starts:
                part = run[start : start + length]
                if pad and len(part) < length:
                    if len(run) >= length:
                        part = run[-length:]
                    else:
                        extra = length - len(part)
                        rows_ = np.r_[signal_rows[part], np.repeat(signal_rows[part[-1]], extra)]
                        targets = np.r_[positions[order[part]], np.full(extra, IGNORE_INDEX)]
                        chunks.append(Chunk(str(recording_id), rows_, targets))
                        continue
                chunks.append(Chunk(str(recording_id), signal_rows[part], positions[order[part]]))
    return chunks


def context_rows(rows: np.ndarray, context: int, n_rows: int) -> np.ndarray:
    """The rows a chunk reads: ``k`` before its first target to ``k`` after its last, clipped to the recording."""
    extended = np.r_[
        rows[0] - np.arange(context, 0, -1), rows, rows[-1] + np.arange(1, context + 1)
    ]
    return np.clip(extended, 0, n_rows - 1)


class EpochSequenceDataset(Dataset):
    """Training/validation chunks: ``x (L + 2k, n_ch, n_times)`` float32 and ``y (L,)`` int64."""

    def __init__(
        self,
        reader: EpochReader,
        table: pd.DataFrame,
        classes: list[str],
        context: int,
        length: int = 1,
    ):
        self.reader = reader
        self.table = table.reset_index(drop=True)
        self.context = int(context)
        self.codes = label_codes(self.table["label"], classes)
        self.chunks = make_chunks(self.table, int(length), pad=True)
        self.n_classes = len(classes)

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        chunk = self.chunks[index]
        rows = context_rows(chunk.rows, self.context, self.reader.n_rows(chunk.recording_id))
        x = self.reader.read(chunk.recording_id, rows)
        y = np.where(chunk.targets >= 0, self.codes[np.maximum(chunk.targets, 0)], IGNORE_INDEX)
        return torch.from_numpy(x), torch.from_numpy(y)

    def chunk_weights(self) -> np.ndarray:
        """Balanced-sampling weight per chunk: mean over its targets of 1 / (class count)."""
        valid = self.codes[self.codes >= 0]
        counts = np.bincount(valid, minlength=self.n_classes).astype(float)
        per_class = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
        weights = []
        for chunk in self.chunks:
            codes = self.codes[chunk.targets[chunk.targets >= 0]]
            codes = codes[codes >= 0]
            weights.append(per_class[codes].mean() if len(codes) else 0.0)
        return np.asarray(weights)


class EpochSampler(Sampler[int]):
    """Seeded chunk order per training pass: a shuffle, or balanced draws with replacement.

    The order depends only on ``(seed, pass)``, never on earlier passes, so a resumed run draws
    the same batches as an uninterrupted one. ``max_items`` caps the chunks drawn per pass.
    """

    def __init__(
        self, n_items: int, seed: int, max_items: int = 0, weights: np.ndarray | None = None
    ):
        self.n_items = int(n_items)
        self.seed = int(seed)
        self.n_draw = (
            min(self.n_items, int(max_items)) if max_items and max_items > 0 else self.n_items
        )
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.pass_index = 0

    def set_pass(self, pass_index: int) -> None:
        self.pass_index = int(pass_index)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.pass_index)
        if self.weights is not None:
            order = torch.multinomial(
                self.weights, self.n_draw, replacement=True, generator=generator
            )
        else:
            order = torch.randperm(self.n_items, generator=generator)[: self.n_draw]
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.n_draw


def augment(
    x: torch.Tensor, settings: dict, sfreq: float, generator: torch.Generator
) -> torch.Tensor:
    """Training-batch augmentation of ``(batch, seq, n_ch, n_times)``, each epoch drawn apart.

    ``time_shift_s`` (circular shift within the epoch), ``amplitude_jitter`` (relative SD of a
    per-channel gain), ``noise_std`` (Gaussian noise, in normalised units), ``channel_dropout``
    (probability of zeroing a channel). Zero or absent settings are off.
    """
    batch, seq, n_ch, n_times = x.shape
    shape = (batch, seq, n_ch, 1)
    shift = int(round(float(settings.get("time_shift_s") or 0) * sfreq))
    if shift > 0:
        offsets = torch.randint(-shift, shift + 1, (batch, seq, 1, 1), generator=generator)
        index = (torch.arange(n_times).view(1, 1, 1, -1) - offsets) % n_times
        x = x.gather(-1, index.expand(batch, seq, n_ch, n_times))
    jitter = float(settings.get("amplitude_jitter") or 0)
    if jitter > 0:
        x = x * (1 + jitter * torch.randn(shape, generator=generator))
    noise = float(settings.get("noise_std") or 0)
    if noise > 0:
        x = x + noise * torch.randn(x.shape, generator=generator)
    dropout = float(settings.get("channel_dropout") or 0)
    if dropout > 0:
        x = x * (torch.rand(shape, generator=generator) >= dropout)
    return x


def prediction_chunks(table: pd.DataFrame, length: int) -> list[Chunk]:
    """Chunks (unpadded) covering every row of ``table`` once, for prediction."""
    return make_chunks(table.reset_index(drop=True), int(length), pad=False)
