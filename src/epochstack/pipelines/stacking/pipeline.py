"""stacking: base models out-of-fold (one namespace each) -> meta-learner -> refit -> test predictions.

The base models are the keys of ``stacking.base_models`` in the parameters; the pipeline's shape
is read from the configuration when the pipeline is created (see ``configured_base_models``).
"""

from __future__ import annotations

from pathlib import Path

from kedro.pipeline import Pipeline, node, pipeline

from epochstack.pipelines.shape import named, project_parameters
from epochstack.pipelines.stacking import nodes

SHARED_INPUTS = {"features", "epoch_table", "folds"}


def configured_base_models(conf_source: str | Path | None = None, env: str | None = None) -> list[str]:
    """Names of ``stacking.base_models`` in the project's parameters (base + ``KEDRO_ENV``/local)."""
    return list(project_parameters(conf_source, env)["stacking"]["base_models"])


def base_model_pipeline(name: str) -> Pipeline:
    """Tune, cross-validate and refit one tabular base model, in the namespace ``name``."""
    data = ["features", "epoch_table", "folds", "params:base_model"]
    template = Pipeline(
        [
            node(
                named(nodes.tune_base_model, model_name=name),
                [*data, "params:stacking", "params:optuna_storage", "params:n_jobs"],
                "best_params",
                name="tune",
            ),
            node(
                named(nodes.cross_validate_base_model, model_name=name),
                [*data, "best_params", "params:stacking", "params:n_jobs"],
                ["oof_probabilities", "cv_report"],
                name="cross_validate",
            ),
            node(
                named(nodes.refit_base_model, model_name=name),
                [*data, "best_params", "params:stacking", "params:n_jobs"],
                ["fitted_model", "test_probabilities"],
                name="refit",
            ),
        ]
    )
    return pipeline(
        template,
        namespace=name,
        inputs=SHARED_INPUTS,
        parameters={
            "params:base_model": f"params:stacking.base_models.{name}",
            "params:stacking": "params:stacking",
            "params:optuna_storage": "params:optuna_storage",
            "params:n_jobs": "params:n_jobs",
        },
    )


def create_pipeline(**kwargs) -> Pipeline:
    names = configured_base_models()
    base_outputs = [f"{n}.{kind}" for n in names for kind in ("oof_probabilities", "test_probabilities")]
    stack = Pipeline(
        [
            node(
                nodes.combine_base_predictions,
                ["folds", "epoch_table", "deep_predictions", "params:stacking", *base_outputs],
                "base_model_predictions",
                name="combine_base_predictions",
            ),
            node(
                nodes.tune_meta_learner,
                ["base_model_predictions", "epoch_table", "params:stacking", "params:optuna_storage"],
                "meta_best_params",
                name="tune_meta_learner",
            ),
            node(
                nodes.cross_validate_meta_learner,
                ["base_model_predictions", "epoch_table", "meta_best_params", "params:stacking"],
                ["stacking_oof_probabilities", "meta_cv_report"],
                name="cross_validate_meta_learner",
            ),
            node(
                nodes.refit_meta_learner,
                ["base_model_predictions", "epoch_table", "meta_best_params", "params:stacking"],
                ["meta_learner", "test_predictions"],
                name="refit_meta_learner",
            ),
            node(
                nodes.assemble_stacking_model,
                ["meta_learner", "base_model_predictions", "epoch_table", *[f"{n}.fitted_model" for n in names]],
                "stacking_model",
                name="assemble_stacking_model",
            ),
            node(
                named(nodes.collect_best_params, model_names=list(names)),
                ["meta_best_params", *[f"{n}.best_params" for n in names]],
                "best_params",
                name="collect_best_params",
            ),
            node(
                nodes.build_stacking_manifest,
                ["stacking_model", "folds", "params:stacking", "best_params"],
                "stacking_manifest",
                name="build_stacking_manifest",
            ),
            node(
                nodes.collect_model_predictions,
                ["base_model_predictions", "stacking_oof_probabilities", "test_predictions"],
                "model_predictions",
                name="collect_model_predictions",
            ),
            node(
                nodes.score_models,
                ["model_predictions", "epoch_table", *[f"{n}.cv_report" for n in names], "meta_cv_report"],
                ["stacking_scores", "stacking_metrics"],
                name="score_models",
            ),
        ]
    )
    return sum((base_model_pipeline(n) for n in names), Pipeline([])) + stack
