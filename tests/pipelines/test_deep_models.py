"""Integration: data_engineering + deep_models in a real KedroSession on tiny synthetic sleep data."""

from __future__ import annotations

import mlflow
import numpy as np
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
    oof = pd.read_parquet(data / "07_model_output/deep_oof_probabilities.parquet")
    test = pd.read_parquet(data / "07_model_output/deep_test_probabilities.parquet")
    assert list(oof.columns) == ["epoch_id", "fold", "model", *proba_columns(classes), "pred"]
    assert set(oof["model"]) == {"cnn_bilstm"}
    cv_folds = folds[folds["fold"] >= 0].set_index("epoch_id")["fold"]
    assert (oof.set_index("epoch_id")["fold"].sort_index() == cv_folds.sort_index()).all()
    assert (
        set(test["epoch_id"]) == set(folds.loc[folds["fold"] == -1, "epoch_id"])
        and (test["fold"] == -1).all()
    )
    assert oof[proba_columns(classes)].sum(axis=1).round(5).eq(1).all()
    model_dir = data / "06_models/cnn_bilstm"
    for name in ("model.pt", "model.onnx", "model.json"):
        assert (model_dir / name).exists(), name
    assert list(model_dir.glob("checkpoints/*/last.pt")), "resumable checkpoints per fold model"
    assert (data / "08_reporting/deep_models/cnn_bilstm_training_curves.png").exists()
    # Versioned reports hold results only; timings go to MLflow (a rerun compares equal in DVC).
    report = (data / "08_reporting/deep_models_report.json").read_text()
    assert (
        "seconds" not in report
        and "seconds" not in (data / "08_reporting/deep_models_scores.json").read_text()
    )
    mlflow.set_tracking_uri(f"sqlite:///{project.path / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True)
    assert runs["metrics.deep.cnn_bilstm.fold_fit_seconds"].notna().any()


def test_saved_final_model_serves_the_test_probabilities(trained):
    from epochstack.models.deep import predict_proba
    from epochstack.signals.epoch_store import EpochStore

    project, params = trained
    data = project.path / "data"
    table = pd.read_parquet(data / "03_primary/epoch_table.parquet")
    folds = pd.read_parquet(data / "05_model_input/folds.parquet")
    test_rows = table[
        table["epoch_id"].isin(folds.loc[folds["fold"] == -1, "epoch_id"])
    ].sort_values("epoch_id")
    proba = predict_proba(
        data / "06_models/cnn_bilstm", EpochStore(data / "03_primary/epoch_signals"), test_rows
    )
    saved = pd.read_parquet(data / "07_model_output/deep_test_probabilities.parquet").set_index(
        "epoch_id"
    )
    classes = sorted(table["label"].dropna().unique())
    expected = saved.loc[test_rows["epoch_id"], proba_columns(classes)].to_numpy()
    assert np.abs(proba - expected).max() < 1e-5
    fitted = project.catalog(params).load("fitted_deep_models")
    assert set(fitted) == {"cnn_bilstm"} and not hasattr(fitted["cnn_bilstm"], "optimizer")


def test_no_enabled_network_trains_nothing(kedro_project, tiny_sleep_params, merge_params):
    params = merge_params(tiny_sleep_params, {"deep_models": {"enabled": []}})
    kedro_project.run(["data_engineering", "deep_models"], params)
    assert pd.read_parquet(
        kedro_project.path / "data/07_model_output/deep_oof_probabilities.parquet"
    ).empty
