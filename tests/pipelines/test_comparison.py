"""comparison on the MLflow runs of two real tiny training runs (stacking + evaluation)."""

import json

import mlflow
import pandas as pd
import pytest

from epochstack.errors import InputDataError
from tests.conftest import TINY_SLEEP, KedroProject, deep_merge

pytestmark = pytest.mark.integration

# Two variants: stacking seed x model set. Quick models; intervals from 2+ subjects (the default
# minimum of 10 would leave these tiny runs without any).
FAST = {
    "stacking": {
        "base_models": {
            "hgb": {"params": {"max_iter": 20}},
            "logreg": {"search": {"enabled": False}},
        }
    },
    "evaluation": {"protocol": "non_nested", "bootstrap": {"n_boot": 200, "min_subjects": 2}},
}
VARIANTS = {
    "a": {"stacking": {"seed": 1, "enabled": ["logreg"]}},
    "b": {"stacking": {"seed": 2, "enabled": ["logreg", "hgb"]}},
}


def run(project, pipelines, params):
    while mlflow.active_run():
        mlflow.end_run()
    return project.run(pipelines, params)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    project = KedroProject(tmp_path_factory.mktemp("comparison") / "project")
    base = deep_merge(TINY_SLEEP, FAST)
    run(project, ["data_engineering", "feature_engineering"], base)
    written = {}
    for name, variant in VARIANTS.items():
        run(project, ["stacking", "evaluation"], deep_merge(base, variant))
        written[name] = json.loads((project.path / "data/08_reporting/metrics.json").read_text())
    run(project, "comparison", {})
    folder = project.path / "data/08_reporting/comparison"
    return (
        project,
        written,
        pd.read_csv(folder / "comparison.csv"),
        json.loads((folder / "comparison.json").read_text()),
    )


def test_one_row_per_variant_and_model(compared):
    _, written, table, summary = compared
    assert summary["n_variants"] == 2 and table["run_id"].nunique() == 2
    models = table.groupby("run_id")["model"].apply(frozenset)
    assert sorted(models, key=len) == [{"logreg", "stack"}, {"logreg", "hgb", "stack"}]
    # the variants are told apart by what differs between them, with their logged values
    assert {"stacking.seed", "stacking.enabled"} <= set(summary["variant_parameters"])
    assert sorted(table.drop_duplicates("run_id")["stacking.seed"]) == [1, 2]
    assert "splits.n_folds" not in table.columns, (
        "a parameter both variants share is not a variant's identity"
    )
    assert (
        table.loc[table.model == "stack", "is_reference"].all()
        and not table.loc[table.model != "stack", "is_reference"].any()
    )
    # scores are those of each run's metrics.json (read back from MLflow), intervals from its ci blocks
    for name, document in written.items():
        rows = table[table["stacking.seed"] == VARIANTS[name]["stacking"]["seed"]].set_index(
            "model"
        )
        for model, splits in document["models"].items():
            for split in ("test", "oof"):
                assert rows.loc[model, f"{split}.cohen_kappa"] == pytest.approx(
                    splits[split]["cohen_kappa"], rel=1e-12
                )
                assert rows.loc[model, f"{split}.macro_f1.ci_low"] == pytest.approx(
                    splits[split]["ci"]["macro_f1"]["low"], rel=1e-12
                )
    assert (table["oof.cohen_kappa.ci_low"] <= table["oof.cohen_kappa.ci_high"]).all()


def test_best_per_metric_is_chosen_on_oof(compared):
    _, _, table, summary = compared
    for metric in ("cohen_kappa", "macro_f1"):
        best = summary["best"][metric]
        top = table.loc[table[f"oof.{metric}"].idxmax()]
        assert (best["chosen_on"], best["run_id"], best["model"]) == (
            "oof",
            top["run_id"],
            top["model"],
        )
        assert best["test"] == pytest.approx(top[f"test.{metric}"])


def test_outputs_are_logged_to_the_comparison_run(compared):
    project, _, _, summary = compared
    client = mlflow.MlflowClient(f"sqlite:///{project.path / 'mlflow.db'}")
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        "tags.`comparison.best.cohen_kappa` != ''",
    )
    assert len(runs) == 1
    run = runs[0]
    assert run.data.metrics["comparison.n_variants"] == 2
    assert run.data.metrics["comparison.best.cohen_kappa.oof"] == pytest.approx(
        summary["best"]["cohen_kappa"]["oof"]
    )
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "comparison")}
    assert {f"comparison/comparison.{ext}" for ext in ("csv", "json", "md", "png")} <= logged
    report = (project.path / "data/08_reporting/comparison/comparison.md").read_text()
    assert "## Best per metric" in report and report.count("| logreg |") == 2


def test_no_scored_run_is_an_input_error(kedro_project):
    with pytest.raises(InputDataError, match="no finished run with model scores"):
        kedro_project.run("comparison", {})


def test_registered_apart_from_the_training_run():
    from epochstack.pipeline_registry import register_pipelines

    pipelines = register_pipelines()
    assert "comparison" in pipelines
    assert not {n.name for n in pipelines["comparison"].nodes} & {
        n.name for n in pipelines["__default__"].nodes
    }


def test_stage_runs_of_one_dvc_experiment_are_one_variant(tmp_path):
    """`dvc exp run` runs each stage as its own `kedro run`; the experiment's name tag
    (`dvc.exp_name`, set here as the project's hook sets it inside DVC) makes them one variant."""
    project = KedroProject(tmp_path / "project")
    base = deep_merge(TINY_SLEEP, FAST)
    run(project, ["data_engineering", "feature_engineering"], base)
    client = mlflow.MlflowClient(f"sqlite:///{project.path / 'mlflow.db'}")
    stage_runs = {}
    for name, seed in (("exp-a", 1), ("exp-b", 2)):
        for stage in ("stacking", "evaluation"):
            run(
                project,
                stage,
                deep_merge(base, {"stacking": {"seed": seed, "enabled": ["logreg"]}}),
            )
            latest = client.search_runs(
                [e.experiment_id for e in client.search_experiments()],
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )[0]
            client.set_tag(latest.info.run_id, "dvc.exp_name", name)
            stage_runs[name, stage] = latest.info.run_id
    run(project, "comparison", {})
    table = pd.read_csv(project.path / "data/08_reporting/comparison/comparison.csv")
    variants = table.drop_duplicates("variant").set_index("variant")
    assert sorted(variants.index) == ["exp-a", "exp-b"]
    assert variants.loc["exp-a", "run_id"] == stage_runs["exp-a", "evaluation"], (
        "scores from the evaluation stage"
    )
    assert (variants.loc["exp-a", "stacking.seed"], variants.loc["exp-b", "stacking.seed"]) == (
        1,
        2,
    ), "parameters from the stacking stage"
