"""Saving, loading and exporting a trained deep model; predictions over a table of epochs, one
chunk of a recording at a time (validation in training, ``DeepModel``, the inference pipeline).

A model directory holds ``model.pt`` (weights and everything needed to rebuild and feed the
network: architecture, parameters, classes, channels, sampling rate, normalisation),
``model.onnx`` (input ``epochs (batch, seq, n_channels, n_times)``, output ``probabilities
(batch, seq - 2k, n_classes)``) and ``model.json`` (the same metadata, readable).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from epochstack.errors import InputDataError
from epochstack.models.deep.data import (
    EpochReader,
    Normalisation,
    channel_indices,
    context_rows,
    prediction_chunks,
)
from epochstack.models.deep.networks import build_network, network_context
from epochstack.signals.epoch_store import EpochStore

logger = logging.getLogger(__name__)

WEIGHTS_FILE, ONNX_FILE, METADATA_FILE = "model.pt", "model.onnx", "model.json"
ONNX_OPSET = 18


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``auto`` picks CUDA when present, else CPU."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def predict_logits(
    network: nn.Module,
    reader: EpochReader,
    table: pd.DataFrame,
    device: torch.device,
    length: int = 256,
) -> torch.Tensor:
    """Logits ``(len(table), n_classes)`` in ``table`` order, one chunk of a recording at a time."""
    table = table.reset_index(drop=True)
    context = network_context(network)
    out: torch.Tensor | None = None
    network.eval()
    with torch.inference_mode():
        for chunk in prediction_chunks(table, length):
            rows = context_rows(chunk.rows, context, reader.n_rows(chunk.recording_id))
            x = torch.from_numpy(reader.read(chunk.recording_id, rows)).unsqueeze(0).to(device)
            logits = network(x)[0].float().cpu()
            if out is None:
                out = torch.zeros(len(table), logits.shape[1])
            out[torch.as_tensor(chunk.targets)] = logits
    return out if out is not None else torch.zeros(0, 0)


def predict_table(
    network: nn.Module,
    reader: EpochReader,
    table: pd.DataFrame,
    device: str | torch.device = "auto",
    length: int = 256,
) -> np.ndarray:
    """Class probabilities ``(len(table), n_classes)`` in ``table`` order."""
    device = resolve_device(device)
    network.to(device)
    proba = torch.softmax(predict_logits(network, reader, table, device, length), dim=1).numpy()
    network.cpu()
    return proba


class WithSoftmax(nn.Module):
    """A network whose outputs are class probabilities (what the ONNX model returns)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, epochs: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(epochs), dim=-1)


def model_metadata(
    architecture: str,
    network_params: dict,
    classes: list[str],
    store: EpochStore,
    channels: np.ndarray,
    normalisation: Normalisation,
) -> dict:
    """What a saved model needs besides its weights, and what inference checks its input against."""
    return {
        "architecture": architecture,
        "network": dict(network_params or {}),
        "classes": list(classes),
        "channel_names": [store.channel_names[i] for i in channels],
        "sfreq": store.sfreq,
        "n_times": store.n_times,
        "normalisation": {
            "method": normalisation.method,
            "clip": normalisation.clip,
            "centre": None if normalisation.centre is None else list(normalisation.centre),
            "scale": None if normalisation.scale is None else list(normalisation.scale),
        },
    }


def network_from(metadata: dict, state_dict: dict) -> nn.Module:
    """The network described by ``metadata`` with the given weights, in eval mode on the CPU."""
    network = build_network(
        metadata["architecture"],
        metadata["network"],
        len(metadata["channel_names"]),
        len(metadata["classes"]),
        int(metadata["n_times"]),
    )
    network.load_state_dict(state_dict)
    return network.eval()


def _floats(values) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


def normalisation_from(metadata: dict) -> Normalisation:
    """The input scaling a saved model was trained with."""
    spec = metadata["normalisation"]
    return Normalisation(
        spec["method"], spec.get("clip"), _floats(spec.get("centre")), _floats(spec.get("scale"))
    )


def onnx_max_difference(
    path: str | Path, network: nn.Module, n_channels: int, n_times: int, seed: int = 0
) -> float:
    """Largest |onnxruntime - torch| probability on a random input of a new batch and sequence size."""
    import onnxruntime

    context = network_context(network)
    epochs = torch.randn(
        3, 2 * context + 3, n_channels, n_times, generator=torch.Generator().manual_seed(seed)
    )
    with torch.inference_mode():
        expected = WithSoftmax(network).eval()(epochs).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return float(np.abs(session.run(None, {"epochs": epochs.numpy()})[0] - expected).max())


def export_onnx(
    network: nn.Module, path: str | Path, n_channels: int, n_times: int, tolerance: float = 1e-4
) -> Path:
    """Export ``network`` (with a softmax) to ONNX with dynamic batch and sequence lengths.

    The TorchScript exporter takes well under a second where the dynamo one takes 5-15 s on
    2 cores, so it goes first; its output is checked against torch on onnxruntime, and the
    dynamo exporter is used when the check fails (it does for LSTMNet's dynamic batch).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    context = network_context(network)
    example = torch.randn(2, 2 * context + 2, n_channels, n_times)
    model = WithSoftmax(network).eval()
    names = {
        "input_names": ["epochs"],
        "output_names": ["probabilities"],
        "opset_version": ONNX_OPSET,
        "verbose": False,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' deprecation and tracer notices
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            dynamic_axes={
                "epochs": {0: "batch", 1: "sequence"},
                "probabilities": {0: "batch", 1: "centres"},
            },
            **names,
        )
        try:
            difference = onnx_max_difference(path, network, n_channels, n_times)
        except Exception as error:  # onnxruntime rejects the graph at run time
            logger.info(
                "TorchScript ONNX export of %s fails on onnxruntime (%s); using the dynamo exporter.",
                type(network).__name__,
                error,
            )
            difference = np.inf
        if not difference <= tolerance:
            dims = {
                0: torch.export.Dim("batch"),
                1: torch.export.Dim("sequence", min=2 * context + 1),
            }
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                dynamic_shapes=(dims,),
                external_data=False,
                **names,
            )
            difference = onnx_max_difference(path, network, n_channels, n_times)
    if not difference <= tolerance:
        raise RuntimeError(
            f"{path}: onnxruntime and torch differ by {difference:.2e} (> {tolerance})."
        )
    return path


def save_model(
    model_dir: str | Path, network: nn.Module, metadata: dict, onnx: bool = True
) -> Path:
    """Write ``model.pt``, ``model.json`` and (``onnx``) ``model.onnx`` into ``model_dir``."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    network = network.cpu().eval()
    torch.save({"state_dict": network.state_dict(), "metadata": metadata}, model_dir / WEIGHTS_FILE)
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
    if onnx:
        export_onnx(
            network, model_dir / ONNX_FILE, len(metadata["channel_names"]), int(metadata["n_times"])
        )
    return model_dir


def load_model(model_dir: str | Path) -> tuple[nn.Module, dict]:
    """The network (eval mode, CPU) and metadata saved by :func:`save_model`."""
    path = Path(model_dir) / WEIGHTS_FILE
    if not path.exists():
        raise InputDataError(
            str(path), "no saved deep model here.", "run `kedro run --pipelines deep_models` first."
        )
    saved = torch.load(path, map_location="cpu", weights_only=False)
    return network_from(saved["metadata"], saved["state_dict"]), saved["metadata"]


def check_store(metadata: dict, store: EpochStore, source: str) -> np.ndarray:
    missing = [c for c in metadata["channel_names"] if c not in store.channel_names]
    if missing:
        raise InputDataError(
            f"{store.path}/info.json",
            f"lacks channels {missing} that the model {source} was trained on.",
            "epoch the recordings with the training channels.",
        )
    if not np.isclose(store.sfreq, metadata["sfreq"]) or store.n_times != int(metadata["n_times"]):
        raise InputDataError(
            f"{store.path}/info.json",
            f"has epochs of {store.n_times} samples at {store.sfreq} Hz; the model {source} expects "
            f"{metadata['n_times']} at {metadata['sfreq']} Hz.",
            "epoch and resample the recordings as for training.",
        )
    return np.asarray([store.channel_names.index(c) for c in metadata["channel_names"]])


def predict_proba(
    model_dir_or_module: str | Path | nn.Module,
    store: EpochStore,
    epoch_table: pd.DataFrame,
    device: str = "auto",
    normalisation: Normalisation | None = None,
    channels: list[str] | None = None,
) -> np.ndarray:
    """Class probabilities ``(len(epoch_table), n_classes)`` for the table's epochs, in its row order.

    With a model directory, classes, channels and normalisation come from its ``model.json``
    and the store is checked against them. With a bare network, ``channels`` (default: all) and
    ``normalisation`` (default: robust) describe its input.
    """
    if isinstance(model_dir_or_module, nn.Module):
        network = model_dir_or_module
        index = channel_indices(store, channels)
        normalisation = normalisation or Normalisation()
    else:
        network, metadata = load_model(model_dir_or_module)
        index = check_store(metadata, store, str(model_dir_or_module))
        normalisation = normalisation_from(metadata)
    reader = EpochReader(store, index, normalisation)
    return predict_table(network, reader, epoch_table, device)
