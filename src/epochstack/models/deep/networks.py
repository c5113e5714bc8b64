"""Plain torch networks on raw epochs: a per-epoch 1D CNN, a CNN-BiLSTM over +-k epochs, an LSTM.

Every network takes a batch of epoch *sequences* ``(batch, seq, n_channels, n_times)`` at the
store's sampling rate and returns logits ``(batch, seq - 2 * context, n_classes)``: one
prediction per epoch that has its full context inside the sequence. Per-epoch networks have
``context = 0``. A sequence of ``L + 2k`` epochs thus predicts ``L`` centre epochs while the
CNN encodes each epoch once (overlapping +-k windows share their encodings).

Networks are built for the epoch length ``n_times`` they will see: decimation, the first
convolution's stride and the pooling between blocks shrink for short epochs (down to 16
samples), so every layer keeps at least a few time steps, and global average pooling ends the
encoder whatever the length. Any number of channels works.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.signal import firwin
from torch import nn

ARCHITECTURES = ("cnn", "cnn_bilstm", "lstm")


class Decimate(nn.Module):
    """Anti-aliased downsampling by an integer factor, as ``scipy.signal.decimate(ftype="fir")``.

    A fixed (not trained) FIR low-pass as a strided depthwise convolution, so exported models
    take epochs at the store's rate and the factor travels with the weights.
    """

    def __init__(self, n_channels: int, factor: int):
        super().__init__()
        self.factor = int(factor)
        self.n_channels = int(n_channels)
        taps = (
            firwin(20 * self.factor + 1, 1.0 / self.factor, window="hamming")
            if self.factor > 1
            else np.ones(1)
        )
        kernel = torch.as_tensor(taps, dtype=torch.float32).repeat(self.n_channels, 1, 1)
        self.register_buffer("kernel", kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.factor == 1:
            return x
        pad = self.kernel.shape[-1] // 2
        return nn.functional.conv1d(
            x, self.kernel, stride=self.factor, padding=pad, groups=self.n_channels
        )


MIN_STEPS = 4  # time steps each encoder stage keeps at least (when the epoch allows it)


def shrink_for_length(
    n_times: int, downsample: int, first_stride: int, pool: int, n_pools: int
) -> tuple[int, int, list[int]]:
    """Decimation factor, first stride and per-stage pools that keep ``MIN_STEPS`` steps per stage.

    Long epochs keep the configured values; short ones get smaller factors (1 at the least).
    """
    factor = max(1, min(int(downsample), int(n_times) // (4 * MIN_STEPS)))
    length = -(-int(n_times) // factor)
    stride = max(1, min(int(first_stride), length // (2 * MIN_STEPS)))
    length = -(-length // stride)
    pools = []
    for _ in range(n_pools):
        size = max(1, min(int(pool), length // MIN_STEPS))
        pools.append(size)
        length //= size
    return factor, stride, pools


class EpochEncoder(nn.Module):
    """Conv blocks (conv, batch norm, ReLU, max-pool) and global average pooling: one vector per epoch.

    ReLU then averaging over time makes each output a learned band/event energy detector.
    ``pools`` (one per gap between blocks) and ``first_stride`` come from :func:`shrink_for_length`.
    """

    def __init__(
        self,
        n_channels: int,
        widths=(8, 16, 32),
        kernel_sizes=(7, 5, 5),
        first_stride: int = 4,
        pools=(4, 4),
        dropout: float = 0.1,
    ):
        super().__init__()
        if len(widths) != len(kernel_sizes):
            raise ValueError(
                f"widths {list(widths)} and kernel_sizes {list(kernel_sizes)} must have the same length."
            )
        layers: list[nn.Module] = []
        in_ch = n_channels
        for i, (width, kernel) in enumerate(zip(widths, kernel_sizes, strict=True)):
            stride = first_stride if i == 0 else 1
            layers += [
                nn.Conv1d(in_ch, width, kernel, stride=stride, padding=kernel // 2, bias=False),
                nn.BatchNorm1d(width),
                nn.ReLU(),
            ]
            if i < len(widths) - 1 and pools[i] > 1:
                layers.append(nn.MaxPool1d(pools[i]))
            in_ch = width
        layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(dropout)]
        self.layers = nn.Sequential(*layers)
        self.n_features = int(widths[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class CNN(nn.Module):
    """Per-epoch 1D CNN: optional decimation, conv encoder, linear head.

    The first convolution's stride (``first_stride``) is a learned downsampling: as cheap as
    decimating first, and its filters still see the high-frequency (EMG) content.
    """

    context = 0

    def __init__(
        self,
        n_channels: int,
        n_classes: int,
        n_times: int,
        downsample: int = 1,
        widths=(8, 16, 32),
        kernel_sizes=(7, 5, 5),
        first_stride: int = 4,
        pool: int = 4,
        dropout: float = 0.2,
    ):
        super().__init__()
        factor, stride, pools = shrink_for_length(
            n_times, downsample, first_stride, pool, len(widths) - 1
        )
        self.decimate = Decimate(n_channels, factor)
        self.encoder = EpochEncoder(n_channels, widths, kernel_sizes, stride, pools, dropout)
        self.head = nn.Linear(self.encoder.n_features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq = x.shape[0], x.shape[1]
        flat = self.decimate(x.flatten(0, 1))
        return self.head(self.encoder(flat)).unflatten(0, (batch, seq))


class CNNBiLSTM(nn.Module):
    """CNN features per epoch, then a bidirectional LSTM over the +-k neighbours of each centre epoch."""

    def __init__(
        self,
        n_channels: int,
        n_classes: int,
        n_times: int,
        context: int = 2,
        downsample: int = 1,
        widths=(8, 16, 32),
        kernel_sizes=(7, 5, 5),
        first_stride: int = 4,
        pool: int = 4,
        lstm_hidden: int = 32,
        lstm_layers: int = 1,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.context = int(context)
        factor, stride, pools = shrink_for_length(
            n_times, downsample, first_stride, pool, len(widths) - 1
        )
        self.decimate = Decimate(n_channels, factor)
        self.encoder = EpochEncoder(n_channels, widths, kernel_sizes, stride, pools, dropout)
        self.lstm = nn.LSTM(
            self.encoder.n_features,
            lstm_hidden,
            num_layers=lstm_layers,
            batch_first=True,
            bidirectional=True,
        )
        self.dropout = nn.Dropout(dropout)
        # The centre epoch's own features join the LSTM output, so context only adds to them.
        self.head = nn.Linear(2 * lstm_hidden + self.encoder.n_features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq = x.shape[0], x.shape[1]
        width = 2 * self.context + 1
        features = self.encoder(self.decimate(x.flatten(0, 1))).unflatten(0, (batch, seq))
        n_centres = seq - 2 * self.context
        # windows[b, i] = features[b, i : i + width]: index arithmetic (exports to ONNX as a gather).
        index = torch.arange(n_centres, device=x.device).unsqueeze(1) + torch.arange(
            width, device=x.device
        ).unsqueeze(0)
        windows = features[:, index.flatten()].reshape(batch * n_centres, width, -1)
        out, _ = self.lstm(windows)
        centre = torch.cat([out[:, self.context], windows[:, self.context]], dim=1)
        return self.head(self.dropout(centre)).reshape(batch, n_centres, -1)


class LSTMNet(nn.Module):
    """LSTM over a downsampled epoch, ``frame`` samples per step, then a dense layer (the seed's LSTM)."""

    context = 0

    def __init__(
        self,
        n_channels: int,
        n_classes: int,
        n_times: int,
        downsample: int = 5,
        frame: int = 10,
        hidden: int = 64,
        dense: int = 32,
        layers: int = 1,
        dropout: float = 0.2,
    ):
        super().__init__()
        factor = max(1, min(int(downsample), int(n_times) // (4 * MIN_STEPS)))
        self.frame = max(1, min(int(frame), -(-int(n_times) // factor) // MIN_STEPS))
        self.decimate = Decimate(n_channels, factor)
        self.lstm = nn.LSTM(n_channels * self.frame, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(hidden, dense), nn.ReLU(), nn.Linear(dense, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq = x.shape[0], x.shape[1]
        signal = self.decimate(x.flatten(0, 1))
        n_steps = signal.shape[-1] // self.frame
        steps = (
            signal[..., : n_steps * self.frame]
            .unflatten(-1, (n_steps, self.frame))
            .transpose(1, 2)
            .flatten(2)
        )
        _, (hidden, _) = self.lstm(steps)
        return self.head(hidden[-1]).unflatten(0, (batch, seq))


def build_network(
    architecture: str, params: dict, n_channels: int, n_classes: int, n_times: int
) -> nn.Module:
    """A network from its architecture name and that class's keyword arguments (from parameters),
    built for epochs of ``n_times`` samples."""
    kwargs = {
        key: tuple(int(v) for v in value) if key in ("widths", "kernel_sizes") else value
        for key, value in (params or {}).items()
    }
    classes = {"cnn": CNN, "cnn_bilstm": CNNBiLSTM, "lstm": LSTMNet}
    if architecture not in classes:
        raise ValueError(
            f"unknown architecture {architecture!r}; use one of {list(ARCHITECTURES)}."
        )
    return classes[architecture](n_channels, n_classes, int(n_times), **kwargs)


def network_context(network: nn.Module) -> int:
    """Epochs of context on each side that a network needs around a predicted epoch."""
    return int(getattr(network, "context", 0))
