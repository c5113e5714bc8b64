"""evaluation: model predictions + labels -> metrics.json, plots and report, all logged to MLflow."""

from epochstack.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
