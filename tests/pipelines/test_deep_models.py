"""Integration: data_engineering + deep_models in a real KedroSession on tiny synthetic sleep data."""

from __future__ import annotations

import pandas as pd
import pytest

from epochstack.models.labels import proba_columns

FAST = {"deep_models": {"preset": "fast", "torch_threads": 1}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_sleep_params, merge_params):
    from tests.conftest import KedroProject

    project = KedroProject(tmp_path_factory.mktemp("deep_models") / "project")
    params = merge_params(tiny_sleep_params, FAST)
    project.run(["data_engineering", "deep_models"], params)
    return project, params


def test_deep_models_write_the_prediction_contract(trained):
    project, _ = trained
    data = project.path / "data"
    table = pd.read_parquet(data / "03_primary/epoch_table.parquet")
    folds = pd.read_parquet(data / "05_model_input/folds.parquet")
    classes = sorted(table["label"].dropna().unique())
    oof = pd.read_parquet(data / "07_model_output/cnn_bilstm/oof_probabilities.parquet")
    test = pd.read_parquet(data / "07_model_output/cnn_bilstm/test_probabilities.parquet")
    assert list(oof.columns) == ["epoch_id", "fold", "model", *proba_columns(classes), "pred"]
    cv_folds = folds[folds["fold"] >= 0].set_index("epoch_id")["fold"]
    assert (oof.set_index("epoch_id")["fold"].sort_index() == cv_folds.sort_index()).all()
    assert set(test["epoch_id"]) == set(folds.loc[folds["fold"] == -1, "epoch_id"]) and (test["fold"] == -1).all()
    assert oof[proba_columns(classes)].sum(axis=1).round(5).eq(1).all()

    deep = pd.read_parquet(data / "07_model_output/deep_predictions.parquet")
    assert set(deep["split"]) == {"oof", "test"} and len(deep) == len(oof) + len(test)
    model_dir = data / "06_models/cnn_bilstm"
    for name in ("model.pt", "model.onnx", "model.json", "checkpoints/final/best.pt", "checkpoints/fold_0/last.pt"):
        assert (model_dir / name).exists(), name
    assert (data / "08_reporting/deep_models/cnn_bilstm_training_curves.png").exists()


def test_saved_final_model_serves_the_inference_api(trained):
    from epochstack.models.deep import predict_proba
    from epochstack.signals.epoch_store import EpochStore

    project, _ = trained
    data = project.path / "data"
    table = pd.read_parquet(data / "03_primary/epoch_table.parquet")
    folds = pd.read_parquet(data / "05_model_input/folds.parquet")
    test_rows = table[table["epoch_id"].isin(folds.loc[folds["fold"] == -1, "epoch_id"])]
    proba = predict_proba(data / "06_models/cnn_bilstm", EpochStore(data / "03_primary/epoch_signals"), test_rows)
    saved = pd.read_parquet(data / "07_model_output/cnn_bilstm/test_probabilities.parquet").set_index("epoch_id")
    classes = sorted(table["label"].dropna().unique())
    expected = saved.loc[test_rows["epoch_id"], proba_columns(classes)].to_numpy()
    assert abs(proba - expected).max() < 1e-5


def test_optuna_search_prunes_on_validation_and_never_reads_test_epochs(tmp_path, monkeypatch):
    import torch

    from epochstack.models.deep import data as deep_data
    from epochstack.pipelines.deep_models.nodes import tune_deep_model
    from tests.models.test_deep_data import tiny_epochs
    from tests.models.test_deep_networks import SMALL

    store, table, folds = tiny_epochs(tmp_path / "epoch_signals")
    test_recordings = set(table.loc[table["epoch_id"].isin(folds.loc[folds["fold"] == -1, "epoch_id"]), "recording_id"])
    read = deep_data.EpochReader.read
    touched = set()

    def spy(self, recording_id, rows):
        touched.add(recording_id)
        return read(self, recording_id, rows)

    monkeypatch.setattr(deep_data.EpochReader, "read", spy)
    network = {"architecture": "cnn", "network": SMALL["cnn"], "training": {"batch_size": 8},
               "search": {"training.learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}}
    deep_models = {"seed": 0, "torch_threads": 1, "data": {"validation_subjects": 1},
                   "optuna": {"n_trials": 3, "budget": {"training": {"max_epochs": 2}}}}
    previous = torch.get_num_threads()
    best = tune_deep_model(store, table, folds, network, deep_models, f"sqlite:///{tmp_path / 'optuna.db'}", "cpu", model_name="cnn")
    assert torch.get_num_threads() == previous
    assert set(best) == {"training.learning_rate"} and 1e-3 <= best["training.learning_rate"] <= 1e-2
    assert touched and not touched & test_recordings
