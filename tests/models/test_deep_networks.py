"""The deep networks: output shapes, learning ability, ONNX export."""

from __future__ import annotations

import pytest
import torch

from epochstack.models.deep.export import export_onnx, onnx_max_difference
from epochstack.models.deep.networks import build_network, network_context

SMALL = {
    "cnn": {"widths": [4, 8], "kernel_sizes": [5, 3], "first_stride": 2, "pool": 2},
    "cnn_bilstm": {
        "context": 2,
        "widths": [4, 8],
        "kernel_sizes": [5, 3],
        "first_stride": 2,
        "pool": 2,
        "lstm_hidden": 8,
    },
    "lstm": {"downsample": 2, "frame": 5, "hidden": 8, "dense": 8},
}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One CPU thread: tests run two at a time on two cores (pytest -n 2)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("architecture", sorted(SMALL))
def test_one_prediction_per_epoch_with_full_context(architecture):
    network = build_network(architecture, SMALL[architecture], 2, 3, 100).eval()
    k = network_context(network)
    out = network(torch.randn(4, 5 + 2 * k, 2, 100))
    assert out.shape == (4, 5, 3)


@pytest.mark.parametrize("architecture", ["cnn", "cnn_bilstm", "lstm"])
@pytest.mark.parametrize(("n_channels", "n_times"), [(1, 16), (14, 50), (6, 100), (4, 3000)])
def test_networks_build_for_any_epoch_shape(architecture, n_channels, n_times):
    """From 16-sample trials to 30-s nights, 1 to 14 channels, with the default (night) settings."""
    network = build_network(architecture, {}, n_channels, 4, n_times).eval()
    k = network_context(network)
    with torch.inference_mode():
        out = network(torch.randn(2, 3 + 2 * k, n_channels, n_times))
    assert out.shape == (2, 3, 4) and torch.isfinite(out).all()


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_network("transformer", {}, 2, 3, 100)


def test_tiny_network_overfits_a_tiny_batch():
    torch.manual_seed(0)
    network = build_network("cnn_bilstm", {**SMALL["cnn_bilstm"], "dropout": 0.0}, 2, 3, 100)
    x, y = torch.randn(8, 3 + 4, 2, 100), torch.randint(0, 3, (8, 3))
    optimiser = torch.optim.AdamW(network.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(network(x).reshape(-1, 3), y.reshape(-1))
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 20


@pytest.mark.parametrize("architecture", ["cnn", "cnn_bilstm"])
def test_onnx_and_torch_agree(tmp_path, architecture):
    network = build_network(architecture, SMALL[architecture], 2, 3, 100).eval()
    path = export_onnx(network, tmp_path / "model.onnx", n_channels=2, n_times=100)
    assert onnx_max_difference(path, network, 2, 100, seed=7) < 1e-4
