"""`kedro run --env uea` end to end on a real UEA dataset shipped in data/01_raw/uea (fast settings)."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

UEA = Path(__file__).resolve().parents[2] / "data" / "01_raw" / "uea"
BASE_MODELS = {
    "logreg",
    "minirocket",
    "multirocket",
    "quant",
    "tangent_space",
    "fgmdm",
}  # conf/uea's stacking.enabled
# Fewer kernels, one Optuna trial, folds in this process (no worker start-up), fewer resamples.
FAST = {
    "dataset": {
        "train_path": str(UEA / "BasicMotions_TRAIN.ts"),
        "test_path": str(UEA / "BasicMotions_TEST.ts"),
    },
    "executor": {"n_workers": 1},
    "stacking": {
        "base_models": {
            "logreg": {"search": {"n_trials": 1, "n_startup_trials": 1}},
            "minirocket": {"params": {"n_kernels": 840}},
            "multirocket": {"params": {"n_kernels": 168}},
            "quant": {"params": {"n_estimators": 50}},
        }
    },
    "evaluation": {"bootstrap": {"n_boot": 100}, "comparisons": {"n_permutations": 99}},
}


@pytest.fixture(scope="module")
def uea_run(tmp_path_factory):
    from tests.conftest import KedroProject

    project = KedroProject(tmp_path_factory.mktemp("uea") / "project")
    project.run("__default__", FAST, env="uea")
    return project


def test_folds_are_the_train_file_stratified_over_cases(uea_run):
    catalog = uea_run.catalog(FAST, env="uea")
    table = catalog.load("epoch_table").merge(catalog.load("folds"), on="epoch_id")
    assert (
        table.recording_id == table.subject_id
    ).all() and table.recording_id.is_unique  # a case = a recording = a subject
    assert set(table.epoch_id[table.fold == -1]) == set(
        table.epoch_id[table.source_split == "test"]
    )
    cv = table[table.fold >= 0]
    assert cv.fold.nunique() == 4 and (cv.source_split == "train").all()
    per_class = cv.groupby(["fold", "label"]).size()  # 40 cases, 4 classes of 10, 4 folds
    assert per_class.between(2, 3).all() and len(per_class) == 16


def test_every_base_model_covers_exactly_the_cv_cases(uea_run):
    catalog = uea_run.catalog(FAST, env="uea")
    folds = catalog.load("folds").set_index("epoch_id")["fold"]
    cv = folds[folds >= 0]
    oof = catalog.load("base_oof_probabilities")
    assert set(oof.model) == BASE_MODELS
    for model, rows in oof.groupby("model"):
        assert rows.epoch_id.is_unique and set(rows.epoch_id) == set(cv.index), model
        assert (rows.set_index("epoch_id").fold == cv.reindex(rows.epoch_id)).all(), model
    assert not any(
        "_ctx_" in c for c in catalog.load("features").columns
    )  # no context across trials


def test_stack_is_at_least_as_good_as_its_best_base_model_on_test(uea_run):
    metrics = json.loads((uea_run.path / "data/08_reporting/metrics.json").read_text())
    test = {model: scores["test"]["accuracy"] for model, scores in metrics["models"].items()}
    assert set(test) == BASE_MODELS | {"stack"}
    assert test["stack"] >= max(test[m] for m in BASE_MODELS)
    assert test["stack"] >= 0.95
    assert metrics["test"]["n_epochs"] == 40 and metrics["info"]["smoothing_methods"] == []


def test_report_says_trials_have_no_temporal_structure(uea_run):
    report = (uea_run.path / "data/08_reporting/report.md").read_text()
    assert "## Temporal structure\n\nNot evaluated" in report
    assert "Temporal smoothing" not in report and "HMM" not in report


def test_the_registered_model_reads_trials_and_answers_its_own_input_example(uea_run):
    """The MLflow Model of a uea run serves trials (one recording id per trial of the training
    length), not 30-s windows of a sleep recording; its input example is two training trials."""
    import mlflow
    import numpy as np

    from epochstack.errors import InputDataError
    from tests.conftest import mlflow_store

    with mlflow_store(f"sqlite:///{uea_run.path / 'mlflow.db'}"):
        model = mlflow.pyfunc.load_model("models:/epochstack-uea_ts/1")
    store = uea_run.catalog(FAST, env="uea").load("epoch_signals")
    example = model.input_example
    assert model.metadata.get_input_schema().input_names() == [
        "time",
        *store.channel_names,
        "recording_id",
        "subject_id",
    ]
    assert example.groupby("recording_id").size().tolist() == [store.n_times] * 2
    served = model.predict(example)
    assert list(served["recording_id"]) == ["example-trial-1", "example-trial-2"]
    np.testing.assert_allclose(served.filter(like="proba_").sum(axis=1), 1.0)
    with pytest.raises(InputDataError, match=f"not whole trials of the {store.n_times} samples"):
        model.predict(example.iloc[:-1])


def test_the_stack_offers_cawpe_and_reads_every_base_model_it_weighs(uea_run):
    report = json.loads((uea_run.path / "data/08_reporting/stack_report.json").read_text())
    assert "cawpe" in report["final"]["candidates"]
    if report["selected"] == "cawpe":
        assert set(report["final"]["weights"]) == BASE_MODELS - set(report["left_out"])
    models = json.loads((uea_run.path / "data/08_reporting/base_model_reports.json").read_text())
    ridge = models["minirocket"]["final"]
    assert set(ridge) == {"alpha", "temperature"} and ridge["temperature"] > 0


def test_case_metadata_groups_the_folds_by_session(kedro_project):
    """dataset.uea.groups: the sessions of a metadata CSV beside the TRAIN file group the folds."""
    raw = kedro_project.path / "data" / "01_raw"
    for split in ("TRAIN", "TEST"):
        shutil.copy(UEA / f"BasicMotions_{split}.ts", raw / f"BasicMotions_{split}.ts")
    sessions = [f"day{i % 10}" for i in range(40)]
    pd.DataFrame({"session": sessions}).to_csv(raw / "BasicMotions_TRAIN_metadata.csv", index=False)
    params = {
        "dataset": {
            "train_path": str(raw / "BasicMotions_TRAIN.ts"),
            "test_path": str(raw / "BasicMotions_TEST.ts"),
            "uea": {"groups": "session"},
        },
        "executor": {"n_workers": 1},
    }
    kedro_project.run("data_engineering", params, env="uea")
    catalog = kedro_project.catalog(params, env="uea")
    table = catalog.load("epoch_table").merge(catalog.load("folds"), on="epoch_id")
    cv = table[table.fold >= 0]
    assert cv.subject_id.nunique() == 10 and cv.recording_id.nunique() == 40
    assert (cv.groupby("subject_id").fold.nunique() == 1).all() and cv.fold.nunique() == 4
