"""Deep networks on raw epochs (PyTorch): networks, lazy epoch data, training loop, export."""

from epochstack.models.deep.cpu import pin_cpu_kernels
from epochstack.models.deep.data import (
    EpochReader,
    EpochSequenceDataset,
    Normalisation,
    channel_indices,
)
from epochstack.models.deep.export import export_onnx, load_model, predict_proba, save_model
from epochstack.models.deep.model import DeepModel, fit_model
from epochstack.models.deep.networks import ARCHITECTURES, CNN, CNNBiLSTM, LSTMNet, build_network
from epochstack.models.deep.training import DeepModelConfig, train

# torch reads these settings at its first operation, which no import above runs.
pin_cpu_kernels()

__all__ = [
    "ARCHITECTURES",
    "CNN",
    "CNNBiLSTM",
    "DeepModel",
    "DeepModelConfig",
    "EpochReader",
    "EpochSequenceDataset",
    "LSTMNet",
    "Normalisation",
    "build_network",
    "channel_indices",
    "export_onnx",
    "fit_model",
    "load_model",
    "predict_proba",
    "save_model",
    "train",
]
