"""The registered MLflow Model serves what the default run trained, through the inference code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import epochstack
from epochstack.models.stacking import SingleModel
from epochstack.serving import label_samples
from tests.conftest import mlflow_store
from tests.lifecycle.conftest import new_recording_samples

pytestmark = pytest.mark.integration

NAME = "epochstack-sleep"


@pytest.fixture(scope="module")
def registry(trained):
    project, _ = trained
    uri = f"sqlite:///{project.path / 'mlflow.db'}"
    with mlflow_store(uri):
        yield MlflowClient(uri, uri)


@pytest.fixture(scope="module")
def samples():
    return new_recording_samples()


def test_the_default_run_registers_the_stack_with_signature_and_pinned_requirements(
    trained, registry
):
    project, _ = trained
    versions = registry.search_model_versions(f"name='{NAME}'")
    assert [str(v.version) for v in versions] == ["1"]
    info = mlflow.models.get_model_info(f"models:/{NAME}/1")
    manifest = project.catalog().load("stacking_manifest")
    channels = project.catalog().load("epoch_signals").channel_names
    assert info.signature.inputs.input_names() == ["time", *channels, "recording_id", "subject_id"]
    assert info.signature.outputs.input_names() == [
        "epoch_id",
        "recording_id",
        "t_start_s",
        "label",
        *[f"proba_{c}" for c in manifest["classes"]],
    ]
    requirements = mlflow.pyfunc.get_model_dependencies(f"models:/{NAME}/1")
    pins = open(requirements).read().split()
    assert f"epochstack=={epochstack.__version__}" in pins
    assert any(p.startswith("torch==") for p in pins) and any(
        p.startswith("scikit-learn==") for p in pins
    )
    run = registry.get_run(versions[0].run_id)
    assert run.info.run_name == "sleep:training@local"
    assert "cnn_bilstm" in manifest["base_model_order"]


def test_deep_networks_are_logged_through_the_onnx_flavour_without_optimiser_state(
    trained, registry
):
    import onnx

    version = registry.get_model_version(NAME, "1")
    deep = mlflow.onnx.load_model(f"runs:/{version.run_id}/deep-cnn_bilstm")
    assert {i.name for i in deep.graph.input} == {"epochs"} and len(deep.graph.initializer) > 0
    folder = mlflow.artifacts.download_artifacts(f"runs:/{version.run_id}/deep-cnn_bilstm")
    files = sorted(os.listdir(folder))
    assert not [f for f in files if "optim" in f or "checkpoint" in f], files
    assert isinstance(onnx.load(os.path.join(folder, "model.onnx")), onnx.ModelProto)


def test_the_registered_model_labels_a_new_recording_as_the_inference_pipeline_does(
    trained, registry, samples, tmp_path
):
    project, params = trained
    table, truth = samples
    served = mlflow.pyfunc.load_model(f"models:/{NAME}/1").predict(table)
    assert len(served) == len(truth) and served["epoch_id"].is_unique
    proba = served.filter(like="proba_").to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)

    path = tmp_path / "new_recording.csv"
    table.to_csv(path, index=False)
    dataset = {"format": "csv", "csv": {"signals_path": str(path)}}
    project.run("inference", {**params, "inference": {"dataset": dataset}})
    pipeline = project.catalog().load("inference_predictions")
    assert list(pipeline["epoch_id"]) == list(served["epoch_id"])
    np.testing.assert_allclose(pipeline.filter(like="proba_").to_numpy(), proba, rtol=0, atol=1e-9)
    assert (pipeline["label"].astype(str) == served["label"].astype(str)).all()
    three = {"W": "Wake", "N1": "NREM", "N2": "NREM", "N3": "NREM", "R": "REM", "REM": "REM"}
    agreement = np.mean([three[t] == p for t, p in zip(truth, served["label"], strict=True)])
    assert agreement > 0.6, agreement


def test_mlflow_models_predict_answers_for_a_csv_recording(trained, samples, tmp_path):
    project, _ = trained
    table, truth = samples
    table.to_csv(tmp_path / "new.csv", index=False)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{project.path / 'mlflow.db'}"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "predict",
            "-m",
            f"models:/{NAME}/1",
            "-i",
            str(tmp_path / "new.csv"),
            "-t",
            "csv",
            "--env-manager",
            "local",
            "-o",
            str(tmp_path / "out.json"),
        ],
        check=True,
        env=env,
        cwd=project.path,
        capture_output=True,
    )
    rows = json.loads((tmp_path / "out.json").read_text())["predictions"]
    assert len(rows) == len(truth) and {"epoch_id", "label", "t_start_s"} <= set(rows[0])


def test_a_stack_reading_the_deep_network_serves_its_probabilities(trained, samples, tmp_path):
    """With the stack choosing the network alone, served probabilities are the network's own
    (the saved model.pt read back, on the epochs of the new recording)."""
    from epochstack.inference import epoch_new_recordings
    from epochstack.models.deep import predict_proba
    from epochstack.recordings import read_recordings
    from epochstack.serving import samples_dataset

    project, _ = trained
    catalog = project.catalog()
    model, manifest = catalog.load("stacking_model"), catalog.load("stacking_manifest")
    model.stack.model_ = SingleModel("cnn_bilstm", model.classes)
    joblib.dump(model, tmp_path / "deep_stack.pkl")
    model = joblib.load(tmp_path / "deep_stack.pkl")  # as the MLflow Model loads it
    table, _ = samples
    served = label_samples(table, model, manifest)

    table.to_csv(tmp_path / "new.csv", index=False)
    dataset = samples_dataset(tmp_path / "new.csv")
    staged, epochs = epoch_new_recordings(
        read_recordings(dataset), dataset, manifest, {"backend": "local", "n_workers": 1}
    )
    try:
        expected = predict_proba(
            project.path / "data/06_models/cnn_bilstm", staged.open(), epochs, device="cpu"
        )
    finally:
        staged.discard()
    np.testing.assert_allclose(served.filter(like="proba_").to_numpy(), expected, atol=1e-5)


def test_the_registered_model_answers_its_own_input_example(trained, registry):
    """Two epochs of a training recording, as samples: the registry's model labels both."""
    project, _ = trained
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    example = model.input_example
    n_times = project.catalog().load("epoch_signals").n_times
    assert len(example) == 2 * n_times and example["recording_id"].nunique() == 1
    served = model.predict(example)
    assert list(served["epoch_id"]) == ["example-recording_000000", "example-recording_000001"]
    np.testing.assert_allclose(served.filter(like="proba_").sum(axis=1), 1.0)


def test_a_recording_without_the_training_channels_is_refused(trained, samples):
    table, _ = samples
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    renamed = table.rename(columns={table.columns[1]: "EEG Cz"})
    with pytest.raises(mlflow.exceptions.MlflowException, match=re.escape(str(table.columns[1]))):
        model.predict(renamed)


def test_the_run_records_its_input_and_headline_metrics(trained, registry):
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.kedro_pipelines = '__default__'"
    )
    run = registry.get_run(runs.run_id.iloc[0])
    (training,) = [i for i in run.inputs.dataset_inputs if i.tags[0].value == "training"]
    assert (
        training.dataset.name == "synthetic-sleep-6x0.5h-seed7"
        and len(training.dataset.digest) == 16
    )
    assert json.loads(training.dataset.source)["tags"]["task"] == "sleep"
    metrics = run.data.metrics
    assert {
        "test.cohen_kappa",
        "test.macro_f1",
        "oof.cohen_kappa",
        "models.stack.test.macro_f1",
    } <= set(metrics)
    assert "test.f1_per_class.REM" in metrics and "test.smoothing.hmm.cohen_kappa" in metrics
    assert not [
        m
        for m in metrics
        if "per_subject" in m or "recall_per_class" in m or m.startswith("comparisons.")
    ]
    assert len(metrics) < 150
    assert pd.notna(metrics["test.cohen_kappa"])
