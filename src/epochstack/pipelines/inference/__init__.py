"""inference: new recordings -> the training preprocessing and features -> the trained stack."""

from epochstack.pipelines.inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
