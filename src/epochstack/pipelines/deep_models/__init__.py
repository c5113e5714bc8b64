"""deep_models: CNN / CNN-BiLSTM / LSTM on raw epochs, out-of-fold per CV fold, refit, ONNX export."""

from epochstack.pipelines.deep_models.pipeline import create_pipeline

__all__ = ["create_pipeline"]
