"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline
from kedro_mlflow.pipeline import pipeline_ml_factory

from epochstack.pipelines.inference.pipeline import MLFLOW_INPUT, create_mlflow_inference_pipeline

# Pipelines that train and score on the project's own data; `inference` runs apart, on new
# recordings, with models these produce.
TRAINING_PIPELINES = ("data_engineering", "feature_engineering", "deep_models", "stacking", "evaluation")


def register_pipelines() -> dict[str, Pipeline]:
    """Register every pipeline under ``pipelines/``; ``__default__`` is the training run."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipelines[name] for name in TRAINING_PIPELINES if name in pipelines), Pipeline([])
    )
    if "stacking" in pipelines:
        # `kedro run --pipelines stacking_ml` trains the stack and logs training + inference as
        # one MLflow model, served by `mlflow models predict -m runs:/<id>/stacking_model`.
        pipelines["stacking_ml"] = pipeline_ml_factory(
            training=pipelines["stacking"],
            inference=create_mlflow_inference_pipeline(),
            input_name=MLFLOW_INPUT,
            log_model_kwargs={"signature": None, "name": "stacking_model"},
        )
    return pipelines
