"""Epoch sequences for the deep networks: lazy reads, per-recording normalisation, context windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from epochstack.errors import InputDataError
from epochstack.models.deep.data import (
    IGNORE_INDEX,
    EpochReader,
    EpochSampler,
    EpochSequenceDataset,
    Normalisation,
    augment,
    channel_indices,
)
from epochstack.signals.epoch_store import write_epoch_store

CLASSES = ["A", "B", "C"]
SFREQ = 50.0


def tiny_epochs(
    path,
    n_subjects: int = 6,
    n_epochs: int = 24,
    n_times: int = 100,
    n_test_subjects: int = 1,
    seed: int = 0,
):
    """A tiny labelled store: class c is a sine of 3 + 6c Hz plus noise; labels come in runs.

    Returns ``(store, epoch_table, folds)``; subject ``i`` is in fold ``i % n_folds`` (the last
    ``n_test_subjects`` in fold -1).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_times) / SFREQ
    epochs, rows = {}, []
    n_cv = n_subjects - n_test_subjects
    for subject in range(n_subjects):
        recording_id = f"sub-{subject}_night-1"
        labels = np.repeat(rng.integers(0, 3, n_epochs // 4 + 1), 4)[:n_epochs]
        gain = rng.uniform(
            0.5, 3.0
        )  # per-subject amplitude: what per-recording normalisation removes
        phase = rng.uniform(0, 2 * np.pi, (n_epochs, 1))
        signal = np.sin(2 * np.pi * (3 + 6 * labels[:, None]) * t + phase)
        data = gain * np.stack([signal, -signal], axis=1) + 0.3 * rng.standard_normal(
            (n_epochs, 2, n_times)
        )
        epochs[recording_id] = data.astype(np.float32)
        fold = subject % 3 if subject < n_cv else -1
        for i in range(n_epochs):
            rows.append(
                {
                    "epoch_id": f"{recording_id}_{i:06d}",
                    "recording_id": recording_id,
                    "subject_id": f"s{subject}",
                    "epoch_index": i,
                    "label": CLASSES[labels[i]],
                    "signal_row": i,
                    "fold": fold,
                }
            )
    store = write_epoch_store(
        path, epochs, sfreq=SFREQ, channel_names=["EEG A", "EMG B"], channel_types=["eeg", "emg"]
    )
    table = pd.DataFrame(rows)
    return store, table.drop(columns="fold"), table[["epoch_id", "fold"]]


@pytest.fixture
def tiny(tmp_path):
    return tiny_epochs(tmp_path / "epoch_signals")


def test_context_windows_never_mix_recordings(tmp_path):
    # Every epoch of recording r holds the value 1000 * r + row: a window's values name its rows.
    epochs = {
        f"rec{r}": (1000 * r + np.arange(5, dtype=np.float32))[:, None, None]
        * np.ones((1, 1, 4), np.float32)
        for r in range(3)
    }
    store = write_epoch_store(
        tmp_path / "s", epochs, sfreq=1.0, channel_names=["x"], channel_types=["eeg"]
    )
    table = pd.DataFrame(
        [
            {
                "epoch_id": f"rec{r}_{i}",
                "recording_id": f"rec{r}",
                "subject_id": f"s{r}",
                "signal_row": i,
                "label": "A",
            }
            for r in range(3)
            for i in range(5)
        ]
    )
    reader = EpochReader(store, channel_indices(store, None), Normalisation("none", None))
    dataset = EpochSequenceDataset(reader, table, ["A"], context=2, length=3)
    for x, _ in (dataset[i] for i in range(len(dataset))):
        values = x[:, 0, 0].numpy()
        assert len(np.unique(values // 1000)) == 1, values  # one recording per window
        assert x.shape[0] == 3 + 2 * 2
    first = dataset[0][0][:, 0, 0].numpy()
    np.testing.assert_array_equal(
        first % 1000, [0, 0, 0, 1, 2, 3, 4]
    )  # edge replication at the start
    last = dataset[1][0][:, 0, 0].numpy()
    np.testing.assert_array_equal(
        last % 1000, [0, 1, 2, 3, 4, 4, 4]
    )  # overlapping last chunk, replicated end


def test_short_recordings_are_padded_with_ignored_targets(tmp_path):
    epochs = {"rec": np.ones((2, 1, 4), np.float32)}
    store = write_epoch_store(
        tmp_path / "s", epochs, sfreq=1.0, channel_names=["x"], channel_types=["eeg"]
    )
    table = pd.DataFrame(
        {
            "epoch_id": ["a", "b"],
            "recording_id": "rec",
            "subject_id": "s",
            "signal_row": [0, 1],
            "label": ["A", "B"],
        }
    )
    dataset = EpochSequenceDataset(
        EpochReader(store, [0], Normalisation()), table, ["A", "B"], context=1, length=4
    )
    x, y = dataset[0]
    assert x.shape == (6, 1, 4)
    assert y.tolist() == [0, 1, IGNORE_INDEX, IGNORE_INDEX]


def test_normalisation_uses_each_recordings_own_statistics(tiny):
    store, table, _ = tiny
    reader = EpochReader(store, channel_indices(store, None), Normalisation("robust", None))
    for recording_id in store.recording_ids[:2]:
        normalised = reader.read(recording_id, np.arange(store[recording_id].shape[0]))
        median = np.median(np.moveaxis(normalised, 1, 0).reshape(2, -1), axis=1)
        q25, q75 = np.percentile(np.moveaxis(normalised, 1, 0).reshape(2, -1), [25, 75], axis=1)
        np.testing.assert_allclose(median, 0, atol=1e-5)
        np.testing.assert_allclose(q75 - q25, 1.349, rtol=1e-4)


def test_unknown_channel_is_a_clear_error(tiny):
    store, _, _ = tiny
    assert channel_indices(store, ["emg"]).tolist() == [1]
    with pytest.raises(InputDataError, match="no channel or channel type 'EOG'"):
        channel_indices(store, ["EOG"])


def test_sampler_is_seeded_per_pass_and_capped():
    sampler = EpochSampler(50, seed=3, max_items=10)
    sampler.set_pass(1)
    first = list(sampler)
    sampler.set_pass(2)
    assert len(first) == 10 and list(sampler) != first
    sampler.set_pass(1)
    assert list(sampler) == first
    balanced = EpochSampler(4, seed=0, weights=np.array([0.0, 0.0, 1.0, 0.0]))
    assert set(balanced) == {2}


def test_augmentation_keeps_shape_and_is_seeded():
    x = torch.randn(2, 3, 2, 100)
    settings = {
        "time_shift_s": 0.2,
        "amplitude_jitter": 0.1,
        "noise_std": 0.05,
        "channel_dropout": 0.5,
    }
    a = augment(x, settings, 50.0, torch.Generator().manual_seed(1))
    b = augment(x, settings, 50.0, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
