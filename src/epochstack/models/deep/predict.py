"""A network's predictions over a table of epochs, one chunk of a recording at a time: for
validation during training, a fitted ``DeepModel`` and a saved model's ``predict_proba``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from epochstack.models.deep.data import EpochReader, context_rows, prediction_chunks
from epochstack.models.deep.networks import network_context


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
