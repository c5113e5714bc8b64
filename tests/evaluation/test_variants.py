"""Variant x model tables from frames shaped like ``mlflow.search_runs`` results."""

import numpy as np
import pandas as pd
import pytest

from epochstack.errors import ParameterError
from epochstack.evaluation import variants as vt

METRICS, SPLITS = ["cohen_kappa"], ["test", "oof"]


def runs_frame(rows: list[dict]) -> pd.DataFrame:
    base = {"status": "FINISHED", "tags.mlflow.parentRunId": None}
    frame = pd.DataFrame([{**base, **row} for row in rows])
    frame["start_time"] = pd.to_datetime(frame["start_time"], unit="s", utc=True)
    return frame


def dvc_grid() -> pd.DataFrame:
    """Two DVC experiments (a stacking stage run and an evaluation stage run each), a plain
    kedro run, a failed run, a nested trial run and an experiment whose evaluation failed."""
    return runs_frame(
        [
            {
                "run_id": "s1",
                "start_time": 1,
                "tags.dvc.exp_name": "seed-7",
                "params.stacking.seed": "7",
                "params.n_jobs": "2",
            },
            {
                "run_id": "e1",
                "start_time": 2,
                "tags.dvc.exp_name": "seed-7",
                "params.evaluation.seed": "42",
                "params.n_jobs": "2",
                "metrics.models.stack.test.cohen_kappa": 0.7,
                "metrics.models.stack.oof.cohen_kappa": 0.6,
            },
            {
                "run_id": "s2",
                "start_time": 3,
                "tags.dvc.exp_name": "seed-8",
                "params.stacking.seed": "8",
                "params.n_jobs": "1",
            },
            {
                "run_id": "e2",
                "start_time": 4,
                "tags.dvc.exp_name": "seed-8",
                "params.evaluation.seed": "42",
                "params.n_jobs": "1",
                "metrics.models.stack.test.cohen_kappa": 0.8,
                "metrics.models.stack.oof.cohen_kappa": 0.5,
                "metrics.models.hgb.test.cohen_kappa": 0.75,
                "metrics.models.hgb.oof.cohen_kappa": 0.65,
            },
            {
                "run_id": "k1",
                "start_time": 5,
                "params.stacking.seed": "8",
                "params.evaluation.seed": "42",
                "metrics.models.stack.test.cohen_kappa": 0.9,
                "metrics.models.stack.oof.cohen_kappa": 0.55,
            },
            {
                "run_id": "f1",
                "start_time": 6,
                "status": "FAILED",
                "metrics.models.stack.oof.cohen_kappa": 0.99,
            },
            {
                "run_id": "t1",
                "start_time": 7,
                "tags.mlflow.parentRunId": "k1",
                "metrics.models.stack.oof.cohen_kappa": 0.98,
            },
            {
                "run_id": "s3",
                "start_time": 8,
                "tags.dvc.exp_name": "seed-9",
                "params.stacking.seed": "9",
            },
            {
                "run_id": "e3",
                "start_time": 9,
                "tags.dvc.exp_name": "seed-9",
                "status": "FAILED",
                "metrics.models.stack.oof.cohen_kappa": 0.97,
            },
        ]
    )


def test_stages_of_one_dvc_experiment_are_one_variant():
    runs, unfinished = vt.variant_runs(dvc_grid(), METRICS, SPLITS, "dvc.exp_name")
    assert list(runs.run_id) == ["s1", "e1", "s2", "e2", "k1"] and unfinished == 2
    variants = vt.group_variants(runs, "dvc.exp_name", METRICS, SPLITS)
    assert list(variants.run_id) == ["e1", "e2", "k1"], (
        "scores and ids from the latest scored run of each variant"
    )
    assert list(variants["params.stacking.seed"]) == ["7", "8", "8"], (
        "parameters of every stage of the experiment"
    )
    assert list(variants.experiment.fillna("")) == ["seed-7", "seed-8", ""]
    parameters = vt.distinguishing_parameters(
        variants, always=["evaluation.seed"], ignore=["n_jobs"]
    )
    assert parameters == ["evaluation.seed", "stacking.seed"]
    table = vt.variant_model_table(variants, parameters, METRICS, SPLITS)
    assert list(zip(table.variant, table.model, strict=True)) == [
        ("seed-7", "stack"),
        ("seed-8", "hgb"),
        ("seed-8", "stack"),
        ("seed=8", "stack"),
    ]
    assert table["test.cohen_kappa.ci_low"].isna().all(), "no interval where the run gave none"
    best = vt.best_per_metric(table, METRICS, SPLITS, "oof")["cohen_kappa"]
    assert (best["variant"], best["model"], best["oof"], best["test"]) == (
        "seed-8",
        "hgb",
        0.65,
        0.75,
    )
    without_groups = vt.group_variants(runs, None, METRICS, SPLITS)
    assert (
        list(without_groups.run_id) == ["e1", "e2", "k1"]
        and without_groups["params.stacking.seed"].isna().sum() == 2
    )


def test_intervals_come_from_the_metrics_document():
    document = {
        "models": {
            "stack": {
                "test": {"ci": {"cohen_kappa": {"low": 0.6, "high": 0.8}}},
                "oof": {"ci": None},
            }
        }
    }
    runs, _ = vt.variant_runs(dvc_grid(), METRICS, SPLITS, "dvc.exp_name")
    asked = []
    runs = vt.with_intervals(
        runs,
        lambda run_id: asked.append(run_id) or (document if run_id == "e2" else None),
        METRICS,
        SPLITS,
    )
    assert asked == ["e1", "e2", "k1"], "only runs with scores have a metrics.json to read"
    table = vt.variant_model_table(
        vt.group_variants(runs, "dvc.exp_name", METRICS, SPLITS), [], METRICS, SPLITS
    )
    row = table[(table.run_id == "e2") & (table.model == "stack")].iloc[0]
    assert (row["test.cohen_kappa.ci_low"], row["test.cohen_kappa.ci_high"]) == (0.6, 0.8)
    assert np.isnan(row["oof.cohen_kappa.ci_low"])
    assert table.loc[table.run_id != "e2", "test.cohen_kappa.ci_low"].isna().all()
    report = vt.markdown_report(
        table, vt.best_per_metric(table, METRICS, SPLITS, "oof"), [], METRICS, SPLITS
    )
    assert "0.800 [0.600, 0.800]" in report


def test_labels_are_short_and_unique():
    assert vt.short_names(
        [
            "stacking.seed",
            "dataset.synthetic.seed",
            "preprocessing.filters.eeg.l_freq",
            "preprocessing.filters.emg.l_freq",
        ]
    ) == {
        "stacking.seed": "stacking.seed",
        "dataset.synthetic.seed": "synthetic.seed",
        "preprocessing.filters.eeg.l_freq": "eeg.l_freq",
        "preprocessing.filters.emg.l_freq": "emg.l_freq",
    }
    twins = runs_frame(
        [
            {
                "run_id": "aaaaaaaa1",
                "start_time": 1,
                "params.x": "1",
                "tags.mlflow.runName": "sleep:training@local",
            },
            {
                "run_id": "bbbbbbbb2",
                "start_time": 2,
                "params.x": "1",
                "tags.mlflow.runName": "sleep:training@local",
            },
        ]
    )
    assert vt.variant_labels(twins, ["x"]) == [
        "sleep:training@local (aaaaaaaa)",
        "sleep:training@local (bbbbbbbb)",
    ]


@pytest.mark.parametrize(
    "bad", [{"metrics": []}, {"splits": ["train"]}, {"choose_on": "validation"}]
)
def test_bad_settings_are_parameter_errors(bad):
    settings = {"metrics": ["cohen_kappa"], "splits": ["test", "oof"], "choose_on": "oof", **bad}
    with pytest.raises(ParameterError, match="comparison."):
        vt.check_settings(settings)
