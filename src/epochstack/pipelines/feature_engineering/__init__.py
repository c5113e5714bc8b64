"""feature_engineering: epoch_signals + epoch_table -> features."""

from epochstack.pipelines.feature_engineering.pipeline import create_pipeline

__all__ = ["create_pipeline"]
