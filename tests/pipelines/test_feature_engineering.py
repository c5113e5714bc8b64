"""feature_engineering in real Kedro sessions, after data_engineering, on tiny data."""

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from epochstack.signals.epoch_store import write_epoch_store

UEA = Path(__file__).resolve().parents[2] / "data" / "01_raw" / "uea"  # shipped with the repo
pytestmark = pytest.mark.integration


def check_features(project, params):
    catalog = project.catalog(params)
    table, features = catalog.load("epoch_table"), catalog.load("features")
    assert list(features["epoch_id"]) == list(table["epoch_id"])
    values = features.drop(columns="epoch_id")
    assert values.shape[1] >= 50
    assert all(np.issubdtype(dtype, np.number) for dtype in values.dtypes)
    assert np.isfinite(values.to_numpy()).mean() > 0.99
    return features


def test_sleep_features_and_mlflow_metrics(kedro_project, tiny_sleep_params):
    kedro_project.run(["data_engineering", "feature_engineering"], params=tiny_sleep_params)
    features = check_features(kedro_project, tiny_sleep_params)
    assert "eeg_fpz_cz_spectral_relpow_alpha" in features
    assert any(c.endswith("_ctx_pmean3") for c in features)

    mlflow.set_tracking_uri(f"sqlite:///{kedro_project.path / 'mlflow.db'}")
    run = mlflow.search_runs(search_all_experiments=True).iloc[0]
    assert run["metrics.features.n_features"] == features.shape[1] - 1
    assert run["metrics.features.n_epochs"] == len(features)
    history = mlflow.MlflowClient().get_metric_history(run.run_id, "features.seconds_per_recording")
    report = pd.read_csv(kedro_project.path / "data/08_reporting/feature_extraction_report.csv")
    assert len(history) == len(report) > 0  # timings in MLflow, one step per recording ...
    assert list(report.columns) == [
        "recording_id",
        "n_epochs",
        "n_nonfinite_replaced",
    ]  # ... not here


def test_uea_features_at_a_low_sampling_rate(kedro_project):
    params = {
        "dataset": {
            "format": "uea_ts",
            "train_path": str(UEA / "BasicMotions_TRAIN.ts"),
            "test_path": str(UEA / "BasicMotions_TEST.ts"),
        }
    }
    kedro_project.run(["data_engineering", "feature_engineering"], params=params)
    features = check_features(kedro_project, params)
    assert "dim_0_spectral_relpow_f70_100" in features  # bands as fractions of Nyquist


def test_seizure_layout_from_a_hand_made_store(kedro_project):
    """Accelerometer + heart rate at 25 Hz, written straight into the project's data/."""
    rng = np.random.default_rng(0)
    arrays = {f"rec{r}": rng.standard_normal((8, 4, 750)).astype(np.float32) for r in range(2)}
    primary = kedro_project.path / "data" / "03_primary"
    write_epoch_store(
        primary / "epoch_signals",
        arrays,
        sfreq=25.0,
        channel_names=["ACC x", "ACC y", "ACC z", "HR"],
        channel_types=["acc", "acc", "acc", "hr"],
    )
    table = pd.DataFrame(
        [
            {
                "epoch_id": f"{rid}_{i:06d}",
                "recording_id": rid,
                "subject_id": rid,
                "epoch_index": i,
                "signal_row": i,
            }
            for rid in arrays
            for i in range(8)
        ]
    )
    table.to_parquet(primary / "epoch_table.parquet")
    kedro_project.run("feature_engineering")
    features = check_features(kedro_project, None)
    assert {
        "acc_magnitude_time_activity_count",
        "acc_x_spectral_logpow_seizure_main",
        "hr_time_slope",
    } <= set(features)
