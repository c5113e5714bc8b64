"""data_engineering: ingest, validate, filter, epoch, flag artefacts, subject-wise folds."""

from epochstack.pipelines.data_engineering.pipeline import create_pipeline

__all__ = ["create_pipeline"]
