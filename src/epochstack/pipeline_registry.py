"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Pipelines that train and score on the project's own data; `inference` runs apart, on new
# recordings, with models these produce.
TRAINING_PIPELINES = (
    "data_engineering",
    "feature_engineering",
    "deep_models",
    "stacking",
    "evaluation",
)


def register_pipelines() -> dict[str, Pipeline]:
    """Register every pipeline under ``pipelines/``; ``__default__`` is the training run."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipelines[name] for name in TRAINING_PIPELINES if name in pipelines), Pipeline([])
    )
    return pipelines
