"""comparison: the MLflow runs of the experiment -> a variant x model table, a plot, the best per metric."""

from epochstack.pipelines.comparison.pipeline import create_pipeline

__all__ = ["create_pipeline"]
