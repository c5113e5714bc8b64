"""deep_models: one namespace per enabled network (tune -> out-of-fold -> refit -> curves), then
all deep predictions in one table for the stacking pipeline.

The enabled networks (``deep_models.enabled``) shape the pipeline; they are read from the
configuration when the pipeline is created (see ``enabled_networks``).
"""

from __future__ import annotations

from pathlib import Path

from kedro.pipeline import Pipeline, node, pipeline

from epochstack.pipelines.deep_models import nodes
from epochstack.pipelines.shape import named, project_parameters

SHARED_INPUTS = {"epoch_signals", "epoch_table", "folds"}


def enabled_networks(conf_source: str | Path | None = None, env: str | None = None) -> list[str]:
    """Names in ``deep_models.enabled`` of the project's parameters (base + ``KEDRO_ENV``/local)."""
    return list(project_parameters(conf_source, env)["deep_models"]["enabled"])


def network_pipeline(name: str) -> Pipeline:
    """Tune, cross-validate and refit one network, in the namespace ``name``."""
    data = ["epoch_signals", "epoch_table", "folds", "params:network", "params:deep_models"]
    template = Pipeline(
        [
            node(named(nodes.tune_deep_model, model_name=name), [*data, "params:optuna_storage", "params:device"], "best_params", name="tune"),
            node(
                named(nodes.cross_validate_deep_model, model_name=name),
                [*data, "best_params", "params:device"],
                ["oof_probabilities", "cv_report"],
                name="cross_validate",
            ),
            node(
                named(nodes.refit_deep_model, model_name=name),
                [*data, "best_params", "params:device"],
                ["test_probabilities", "refit_report"],
                name="refit",
            ),
            node(nodes.plot_training_curves, ["cv_report", "refit_report"], "training_curves", name="plot_training_curves"),
        ]
    )
    return pipeline(
        template,
        namespace=name,
        inputs=SHARED_INPUTS,
        parameters={
            "params:network": f"params:deep_models.networks.{name}",
            "params:deep_models": "params:deep_models",
            "params:optuna_storage": "params:optuna_storage",
            "params:device": "params:device",
        },
    )


def create_pipeline(**kwargs) -> Pipeline:
    names = kwargs.get("networks") or enabled_networks()
    if not names:  # nothing enabled: deep_predictions stays absent and the stack is tabular only
        return Pipeline([])
    predictions = [f"{n}.{kind}" for n in names for kind in ("oof_probabilities", "test_probabilities")]
    combine = Pipeline(
        [
            node(nodes.collect_deep_predictions, predictions, "deep_predictions", name="collect_deep_predictions"),
            node(
                nodes.score_deep_models,
                ["deep_predictions", "epoch_table", *[f"{n}.cv_report" for n in names]],
                ["deep_models_scores", "deep_models_metrics"],
                name="score_deep_models",
            ),
        ]
    )
    return sum((network_pipeline(n) for n in names), Pipeline([])) + combine
