"""The deep training loop: repeatability, resume, out-of-fold without leakage, saved models."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from epochstack.models.deep.data import (
    EpochReader,
    EpochSequenceDataset,
    Normalisation,
    channel_indices,
)
from epochstack.models.deep.export import model_metadata, predict_proba, predict_table, save_model
from epochstack.models.deep.model import DeepModel
from epochstack.models.deep.networks import build_network
from epochstack.models.deep.training import DeepModelConfig, train
from epochstack.models.engine import EpochData, out_of_fold
from tests.models.test_deep_data import CLASSES, tiny_epochs
from tests.models.test_deep_networks import SMALL

SETTINGS = {
    "max_passes": 4,
    "batch_size": 4,
    "sequence_length": 4,
    "patience": 10,
    "learning_rate": 0.01,
    "augmentation": {"time_shift_s": 0.1, "noise_std": 0.05},
    "predict_length": 16,
}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One CPU thread: tests run two at a time on two cores (pytest -n 2)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    store, table, folds = tiny_epochs(tmp_path_factory.mktemp("deep") / "epoch_signals")
    return store, table.merge(folds, on="epoch_id")


def _datasets(store, table):
    reader = EpochReader(store, channel_indices(store, None), Normalisation())
    train_rows, val_rows = table[table["fold"].isin([0, 1])], table[table["fold"] == 2]
    return (
        EpochSequenceDataset(reader, train_rows, CLASSES, 2, 4),
        EpochSequenceDataset(reader, val_rows, CLASSES, 2, 1),
        reader,
    )


def _train(store, table, **kwargs):
    torch.manual_seed(123)  # a different global state must not matter: train() seeds itself
    train_set, val_set, reader = _datasets(store, table)
    network = build_network("cnn_bilstm", SMALL["cnn_bilstm"], 2, 3, 100)
    result = train(
        network,
        train_set,
        val_set,
        {**SETTINGS, **kwargs.pop("settings", {})},
        seed=5,
        sfreq=store.sfreq,
        device="cpu",
        **kwargs,
    )
    return result, predict_table(result.network, reader, table[table["fold"] == -1], "cpu")


def test_fixed_seed_training_is_repeatable(tiny):
    store, table = tiny
    (first, proba_1), (second, proba_2) = _train(store, table), _train(store, table)
    for a, b in zip(
        first.network.state_dict().values(), second.network.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(proba_1, proba_2)
    assert [r.train_loss for r in first.history] == [r.train_loss for r in second.history]


def test_resume_from_last_checkpoint_continues_the_same_run(tiny, tmp_path):
    store, table = tiny
    straight, proba_straight = _train(store, table, checkpoint_dir=tmp_path / "straight")

    def crash_after_two_passes(record):
        if record.pass_index == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(
            store, table, checkpoint_dir=tmp_path / "resumed", callbacks=[crash_after_two_passes]
        )
    resumed, proba_resumed = _train(store, table, checkpoint_dir=tmp_path / "resumed")
    assert resumed.resumed_at == 2 and len(resumed.history) == 4
    np.testing.assert_allclose(
        [r.train_loss for r in resumed.history], [r.train_loss for r in straight.history], rtol=1e-5
    )
    np.testing.assert_allclose(proba_resumed, proba_straight, atol=1e-5)


def test_training_learns_the_tiny_task(tiny):
    store, table = tiny
    result, proba = _train(store, table, settings={"max_passes": 12})
    test = table[table["fold"] == -1]
    accuracy = (np.asarray(CLASSES)[proba.argmax(1)] == test["label"].to_numpy()).mean()
    assert accuracy > 0.8, (accuracy, [r.val_score for r in result.history])


def _deep_model(checkpoints, **training):
    config = DeepModelConfig(
        "cnn",
        "cnn",
        SMALL["cnn"],
        {**SETTINGS, "max_passes": 1, "sequence_length": 1, **training},
        validation_fraction=0.2,
        min_validation_subjects=1,
        seed=1,
    )
    return DeepModel(config, CLASSES, device="cpu", checkpoint_root=checkpoints)


def test_out_of_fold_predictions_come_from_models_that_never_saw_them(tiny, tmp_path):
    """Through the one OOF engine: neither training nor early-stopping epochs are ever predicted."""
    store, table = tiny
    data = EpochData(table, CLASSES, signals=store)
    cv = np.flatnonzero(table["fold"].to_numpy() >= 0)
    fitted = []

    def make():
        fitted.append(_deep_model(tmp_path))
        return fitted[-1]

    result = out_of_fold(make, data, cv)
    assert result.proba.shape == (len(cv), 3) and np.isfinite(result.proba).all()
    subject = table.set_index("epoch_id")["subject_id"]
    for model, record in zip(fitted, result.folds, strict=True):
        assert set(record.predicted_epoch_ids) == set(
            data.epoch_ids(cv[data.folds(cv) == record.fold])
        )
        assert not set(record.predicted_epoch_ids) & set(model.seen_epoch_ids)
        assert (
            model.n_validation_ > 0
            and len(model.seen_epoch_ids) == model.n_train_ + model.n_validation_
        )
        validation = set(model.seen_epoch_ids[model.n_train_ :])
        assert not set(subject[list(validation)]) & set(
            subject[list(model.seen_epoch_ids[: model.n_train_])]
        ), "whole validation subjects"
    assert len(list(tmp_path.glob("*/last.pt"))) == len(result.folds)
    with pytest.raises(ValueError, match="fold -1"):
        out_of_fold(make, data, np.arange(len(table)))


def test_changed_settings_retrain_instead_of_resuming(tiny, tmp_path):
    """Checkpoints are keyed by configuration and data: a changed dropout trains afresh."""
    store, table = tiny
    data = EpochData(table, CLASSES, signals=store)
    rows = np.flatnonzero(table["fold"].to_numpy() >= 0)
    first = _deep_model(tmp_path).fit(data, rows)
    again = _deep_model(tmp_path).fit(data, rows)
    assert again.resumed_at_ == 1, "the same model and data resume the finished run"
    changed = _deep_model(tmp_path)
    changed.config.network = {**SMALL["cnn"], "dropout": 0.35}
    retrained = changed.fit(data, rows)
    assert retrained.resumed_at_ == 0
    assert any(
        not torch.equal(a, b)
        for a, b in zip(first.state_dict_.values(), retrained.state_dict_.values(), strict=True)
    )


def test_trial_datasets_are_normalised_with_training_statistics(tmp_path):
    """One epoch per recording: per-channel statistics of the training epochs, kept with the model."""
    store, table, folds = tiny_epochs(tmp_path / "s", n_subjects=4, n_epochs=1, n_test_subjects=0)
    table = table.merge(folds, on="epoch_id")
    data = EpochData(table, CLASSES, signals=store)
    model = _deep_model(tmp_path / "ckpt").fit(data, np.arange(3))
    normalisation = model.metadata_["normalisation"]
    assert normalisation["method"] == "training_set" and len(normalisation["centre"]) == 2
    assert model.predict_proba(data, np.array([3])).shape == (1, 3)


def test_saved_model_predicts_like_the_network(tiny, tmp_path):
    store, table = tiny
    network = build_network("cnn_bilstm", SMALL["cnn_bilstm"], 2, 3, 100).eval()
    metadata = model_metadata(
        "cnn_bilstm", SMALL["cnn_bilstm"], CLASSES, store, np.arange(2), Normalisation()
    )
    save_model(tmp_path / "model", network, metadata, onnx=False)
    from_dir = predict_proba(tmp_path / "model", store, table)
    from_module = predict_proba(network, store, table)
    assert from_dir.shape == (len(table), 3)
    np.testing.assert_allclose(from_dir, from_module, atol=1e-6)
    np.testing.assert_allclose(from_dir.sum(axis=1), 1, atol=1e-5)


def test_identical_training_pickles_to_identical_bytes_anywhere(tiny, tmp_path):
    """A fitted model holds results only: no wall time, no checkpoint folder of the machine."""
    store, table = tiny
    data = EpochData(table, CLASSES, signals=store)
    rows = np.flatnonzero(table["fold"].to_numpy() >= 0)
    here = _deep_model(tmp_path / "here").fit(data, rows)
    there = _deep_model(tmp_path / "there").fit(data, rows)
    assert pickle.dumps(here) == pickle.dumps(there)
    assert pickle.loads(pickle.dumps(here)).checkpoint_root is None
    assert all("seconds" not in record for record in here.report()["history"])
    unfitted = pickle.loads(pickle.dumps(_deep_model(tmp_path / "here")))
    assert unfitted.checkpoint_root == tmp_path / "here", "workers still resume from checkpoints"
