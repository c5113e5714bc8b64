"""stacking: out-of-fold base models, meta-learner, refit, test predictions, manifest."""

from epochstack.pipelines.stacking.pipeline import create_pipeline

__all__ = ["create_pipeline"]
