"""Speed of the deep networks on CPU: training throughput, batch inference latency, peak memory.

Networks are built from conf/base/parameters_deep_models.yml with random weights, on random
epochs shaped like the default data (4 channels x 3000 samples at 100 Hz). Stand-alone:

    python benchmarks/deep_models.py [--threads 2] [--batch 256] [--repeats 5]

The last line is ``cnn_cpu_ms_per_epoch=<value>`` (torch, inference mode, best of the repeats).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch
import yaml

from epochstack.models.deep.export import export_onnx
from epochstack.models.deep.networks import build_network, network_context
from epochstack.models.deep.training import training_settings

PARAMETERS = Path(__file__).resolve().parents[1] / "conf" / "base" / "parameters_deep_models.yml"
N_CHANNELS, N_TIMES, N_CLASSES = 4, 3000, 3


def best_of(repeats: int, func) -> float:
    """Fastest of ``repeats`` timed calls (after one warm-up call), in seconds."""
    func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def training_throughput(network: torch.nn.Module, settings: dict, n_steps: int) -> float:
    """Target epochs per second through forward, backward and AdamW steps (batches as in training)."""
    length, batch = int(settings["sequence_length"]), int(settings["batch_size"])
    x = torch.randn(batch, length + 2 * network_context(network), N_CHANNELS, N_TIMES)
    y = torch.randint(0, N_CLASSES, (batch, length))
    optimiser = torch.optim.AdamW(network.parameters())
    network.train()

    def steps():
        for _ in range(n_steps):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(
                network(x).reshape(-1, N_CLASSES), y.reshape(-1)
            ).backward()
            optimiser.step()

    return n_steps * batch * length / best_of(2, steps)


def inference_inputs(network: torch.nn.Module, n_epochs: int) -> torch.Tensor:
    """``n_epochs`` epochs as the pipeline feeds them: one sequence (plus context) for context models."""
    context = network_context(network)
    if context:
        return torch.randn(1, n_epochs + 2 * context, N_CHANNELS, N_TIMES)
    return torch.randn(n_epochs, 1, N_CHANNELS, N_TIMES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch / onnxruntime CPU threads")
    parser.add_argument("--batch", type=int, default=256, help="epochs per inference batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = yaml.safe_load(PARAMETERS.read_text())["deep_models"]
    print(
        f"CPU, {args.threads} threads; inference batch {args.batch} epochs of {N_CHANNELS} x {N_TIMES}; best of {args.repeats}"
    )
    print(
        f"{'network':<12} {'params':>8} {'train epochs/s':>15} {'torch ms/epoch':>15} {'onnxruntime ms/epoch':>21}"
    )
    results = {}
    for name, spec in config["networks"].items():
        network = build_network(
            spec["architecture"], spec.get("network") or {}, N_CHANNELS, N_CLASSES, N_TIMES
        )
        settings = training_settings(
            {**(config.get("training") or {}), **(spec.get("training") or {})}
        )
        throughput = training_throughput(network, settings, args.train_steps)
        network.eval()
        x = inference_inputs(network, args.batch)
        with torch.inference_mode():
            torch_ms = (
                best_of(args.repeats, lambda network=network, x=x: network(x)) / args.batch * 1000
            )
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(network, Path(tmp) / "model.onnx", N_CHANNELS, N_TIMES)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = args.threads
            session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
            feed = {"epochs": x.numpy()}
            onnx_ms = (
                best_of(args.repeats, lambda session=session, feed=feed: session.run(None, feed))
                / args.batch
                * 1000
            )
        n_params = sum(p.numel() for p in network.parameters())
        results[name] = torch_ms
        print(f"{name:<12} {n_params:>8} {throughput:>15.0f} {torch_ms:>15.3f} {onnx_ms:>21.3f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak_mb:.0f} MB (whole process)")
    print(f"cnn_cpu_ms_per_epoch={np.round(results['cnn'], 4)}")


if __name__ == "__main__":
    main()
