"""stacking (then inference) in real Kedro sessions on tiny synthetic sleep data."""

import json

import mlflow
import numpy as np
import pytest

pytestmark = pytest.mark.integration


def run(project, pipeline_name, params):
    """Run in a fresh MLflow run (a catalog session may leave one active in this process)."""
    while mlflow.active_run():
        mlflow.end_run()
    return project.run(pipeline_name, params)


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory):
    from tests.conftest import FAST_STACKING, TINY_SLEEP, KedroProject, deep_merge

    project = KedroProject(tmp_path_factory.mktemp("stacking") / "project")
    params = deep_merge(TINY_SLEEP, FAST_STACKING)
    run(project, ["data_engineering", "feature_engineering"], params)
    run(project, "stacking", params)
    return project, params


def test_outputs_line_up_with_folds(trained_project):
    project, params = trained_project
    catalog = project.catalog(params)
    folds, table = catalog.load("folds"), catalog.load("epoch_table")
    cv_ids, test_ids = set(folds.epoch_id[folds.fold >= 0]), set(folds.epoch_id[folds.fold == -1])

    oof = catalog.load("stacking_oof_probabilities")
    assert set(oof.epoch_id) == cv_ids and oof.epoch_id.is_unique
    test = catalog.load("test_predictions")
    assert set(test.epoch_id) == test_ids
    np.testing.assert_allclose(test.filter(like="proba_").sum(axis=1), 1.0, atol=1e-9)
    base = catalog.load("base_oof_probabilities")
    for model, rows in base.groupby("model"):
        merged = rows.merge(folds, on="epoch_id", suffixes=("", "_true"))
        assert len(merged) == len(cv_ids) and (merged.fold == merged.fold_true).all(), model
    assert set(
        catalog.load("base_test_probabilities").groupby("model").epoch_id.apply(frozenset)
    ) == {frozenset(test_ids)}

    predictions = catalog.load("model_predictions")
    assert set(predictions.model) == {"hgb", "logreg", "extra_trees", "stack"}
    assert set(predictions.split) == {"oof", "test"}
    manifest = catalog.load("stacking_manifest")
    assert manifest["base_model_order"] == [
        m for m in ("logreg", "hgb", "extra_trees") if m in manifest["base_model_order"]
    ]
    assert manifest["classes"] == sorted(table.label.dropna().unique())
    assert manifest["stack_selected"] == catalog.load("stack_report")["selected"]
    assert manifest["training"]["features"]["families"], (
        "inference reuses the training feature parameters"
    )


def test_optuna_trials_are_nested_mlflow_runs(trained_project):
    project, _ = trained_project
    mlflow.set_tracking_uri(f"sqlite:///{project.path / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True)
    nested = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert len(nested) >= 2 and "params.C" in nested
    parent = runs[
        runs["tags.mlflow.parentRunId"].isna() & runs["metrics.stacking.stack.oof_macro_f1"].notna()
    ]
    assert len(parent) == 1 and set(nested["tags.mlflow.parentRunId"]) == {parent.run_id.iloc[0]}
    assert "metrics.stacking.hgb.fold_fit_seconds" in runs
    assert "metrics.stacking.hgb.fold_predict_seconds" in runs


def test_versioned_reports_hold_no_timings(trained_project):
    """Reports and metrics files are versioned by DVC: a rerun with the same results must compare
    equal, so the per-fold seconds go to MLflow only (test_optuna_trials_are_nested_mlflow_runs)."""
    project, params = trained_project
    catalog = project.catalog(params)
    scores = catalog.load("stacking_scores")
    assert set(scores["oof_scores"]) == {"hgb", "logreg", "extra_trees", "stack"}
    assert "seconds" not in json.dumps(scores)
    reports = catalog.load("base_model_reports")
    assert all(len(r["folds"]) == 2 for r in reports.values())
    assert "seconds" not in json.dumps(reports)


def test_inference_on_training_recordings_reproduces_test_predictions(trained_project):
    project, params = trained_project
    catalog = project.catalog(params)
    dataset = catalog.load("params:dataset")
    run(project, "inference", {**params, "inference": {"dataset": dataset}})
    predicted = project.catalog(params).load("inference_predictions")
    test = catalog.load("test_predictions").set_index("epoch_id")
    rows = predicted.set_index("epoch_id").loc[test.index]
    proba = [c for c in test.columns if c.startswith("proba_")]
    # Same models, same features: equal up to floating-point summation order (BLAS blocking).
    np.testing.assert_allclose(rows[proba].to_numpy(), test[proba].to_numpy(), rtol=0, atol=1e-12)
    assert (rows["label"].astype(str) == test["pred"].astype(str)).all()
    assert {"recording_id", "t_start_s"} <= set(predicted.columns)


def test_inference_refuses_a_mismatched_manifest(trained_project):
    project, params = trained_project
    path = project.path / "data/06_models/stacking/manifest.json"
    manifest = json.loads(path.read_text())
    model = manifest["required_models"][0]
    bad = {
        **manifest,
        "features_per_model": {**manifest["features_per_model"], model: ["not_a_feature"]},
    }
    path.write_text(json.dumps(bad))
    try:
        with pytest.raises(
            Exception, match="feature columns named in the stacking manifest are missing"
        ):
            run(project, "inference", params)
    finally:
        path.write_text(json.dumps(manifest))


def test_the_model_set_is_a_parameter(trained_project, merge_params):
    """`stacking.enabled` (an env or --params) decides which base models run, and nothing else runs."""
    project, params = trained_project
    run(project, "stacking", merge_params(params, {"stacking": {"enabled": ["logreg"]}}))
    catalog = project.catalog(params)
    assert set(catalog.load("base_oof_probabilities").model) == {"logreg"}
    assert set(catalog.load("model_predictions").model) == {"logreg", "stack"}
    assert catalog.load("stacking_manifest")["base_model_order"] == ["logreg"]


def test_deep_predictions_from_other_folds_are_refused(trained_project):
    project, params = trained_project
    catalog = project.catalog(params)
    base = catalog.load("base_oof_probabilities").query("model == 'logreg'").assign(model="cnn")
    moved = base.assign(fold=(base.fold + 1) % 2)
    catalog.save("deep_oof_probabilities", moved)
    catalog.save(
        "deep_test_probabilities",
        catalog.load("base_test_probabilities").query("model == 'logreg'").assign(model="cnn"),
    )
    try:
        with pytest.raises(Exception, match="re-run `kedro run --pipelines deep_models`"):
            run(project, "stacking", params)
    finally:
        for name in ("deep_oof_probabilities", "deep_test_probabilities"):
            (project.path / f"data/07_model_output/{name}.parquet").unlink()
