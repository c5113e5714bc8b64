"""Cost of every raw-signal base model on trials of a given shape, per 1,000 cases.

Synthetic EEG-like trials (pink-ish noise on every channel; in class ``b`` an oscillation burst
at a tenth of the sampling rate on a quarter of the channels, random phase and onset) with the
shape of the largest trial sets the ``uea`` environment is meant for. Each model is fitted on the
training cases and predicts the test cases in this process, on one thread, reading the epochs
from an epoch store as the pipeline does. Printed per model: fit and predict seconds, both per
1,000 cases of CPU time (the wall time too: on a loaded machine only CPU
time compares), and test accuracy (a sanity check: the data are easy for some methods, hard for
others, and say nothing about real recordings).

    python benchmarks/trial_models.py                       # 300 + 300 cases, 28 ch x 1200
    python benchmarks/trial_models.py --models quant hydra --train 100 --test 100
    python benchmarks/trial_models.py --write-ts /tmp/trials   # also the .ts pair for kedro

The last line is ``trial_models_cpu_seconds_per_1000=<sum over models of fit + predict CPU per 1,000>``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from epochstack.models.engine import EpochData
from epochstack.models.signal_models import SIGNAL_MODELS, SignalModel
from epochstack.signals.epoch_store import write_epoch_store

CLASSES = ["a", "b"]


def synthetic_trials(
    n: int, channels: int, length: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` trials ``(channels, length)`` and their labels (see the module docstring)."""
    rng = np.random.default_rng(seed)
    white = rng.normal(size=(n, channels, length))
    spectrum = np.fft.rfft(white, axis=-1) / np.sqrt(1 + np.arange(length // 2 + 1))
    X = np.fft.irfft(spectrum, n=length, axis=-1) * 10
    y = rng.integers(0, 2, n)
    t = np.arange(length)
    burst = max(length // 4, 8)
    for i in np.flatnonzero(y == 1):
        start = rng.integers(0, length - burst + 1)
        wave = np.sin(2 * np.pi * 0.1 * t[:burst] + rng.uniform(0, 2 * np.pi))
        X[i, : max(channels // 4, 1), start : start + burst] += 0.8 * wave
    return X.astype(np.float32), np.asarray(CLASSES)[y]


def write_ts(path: Path, X: np.ndarray, y: np.ndarray, name: str) -> None:
    """A UEA ``.ts`` file of ``X`` and ``y``."""
    header = [
        f"@problemName {name}",
        "@timeStamps false",
        "@missing false",
        "@univariate false",
        f"@dimensions {X.shape[1]}",
        "@equalLength true",
        f"@seriesLength {X.shape[2]}",
        f"@classLabel true {' '.join(CLASSES)}",
        "@data",
    ]
    with open(path, "w") as f:
        f.write("\n".join(header) + "\n")
        for case, label in zip(X, y, strict=True):
            f.write(":".join(",".join(f"{v:.5g}" for v in ch) for ch in case) + f":{label}\n")


def epoch_data(X: np.ndarray, y: np.ndarray, n_train: int, folder: Path) -> EpochData:
    ids = [f"case_{i:05d}" for i in range(len(y))]
    store = write_epoch_store(
        folder / "store",
        {rid: X[i : i + 1] for i, rid in enumerate(ids)},
        sfreq=1.0,
        channel_names=[f"dim_{c}" for c in range(X.shape[1])],
        channel_types=["misc"] * X.shape[1],
        sfreq_known=False,
    )
    table = pd.DataFrame(
        {
            "epoch_id": [f"{rid}_000000" for rid in ids],
            "recording_id": ids,
            "subject_id": ids,
            "signal_row": 0,
            "label": y,
            "fold": np.where(np.arange(len(y)) < n_train, 0, -1),
        }
    )
    return EpochData(table, CLASSES, signals=store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(SIGNAL_MODELS))
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--channels", type=int, default=28)
    parser.add_argument("--length", type=int, default=1200)
    parser.add_argument("--drcif-trees", type=int, default=50)
    parser.add_argument("--write-ts", type=Path, default=None)
    args = parser.parse_args()
    n = args.train + args.test
    X, y = synthetic_trials(n, args.channels, args.length, seed=0)
    if args.write_ts:
        args.write_ts.mkdir(parents=True, exist_ok=True)
        for split, part in (("TRAIN", slice(0, args.train)), ("TEST", slice(args.train, n))):
            write_ts(args.write_ts / f"Trials_{split}.ts", X[part], y[part], "Trials")
    print(
        f"{args.train} + {args.test} cases x {args.channels} ch x {args.length}; load {os.getloadavg()[0]:.1f}"
    )
    total = 0.0
    with tempfile.TemporaryDirectory() as folder, threadpool_limits(1):
        data = epoch_data(X, y, args.train, Path(folder))
        train, test = np.arange(args.train), np.arange(args.train, n)
        for kind in args.models:
            params = {"n_estimators": args.drcif_trees} if kind == "drcif" else {}
            started, cpu_started = time.perf_counter(), time.process_time()
            model = SignalModel(kind, params, CLASSES, seed=0).fit(data, train)
            fitted, cpu_fitted = time.perf_counter(), time.process_time()
            proba = model.predict_proba(data, test)
            done, cpu_done = time.perf_counter(), time.process_time()
            fit_k = (cpu_fitted - cpu_started) / args.train * 1000
            predict_k = (cpu_done - cpu_fitted) / args.test * 1000
            total += fit_k + predict_k
            accuracy = float((np.asarray(CLASSES)[proba.argmax(1)] == y[test]).mean())
            print(
                f"{kind:<18} fit {fitted - started:7.1f} s wall, {fit_k:6.1f} s CPU / 1,000 cases; "
                f"predict {done - fitted:6.1f} s wall, {predict_k:6.1f} s CPU / 1,000; "
                f"acc {accuracy:.3f}",
                flush=True,
            )
    print(f"load {os.getloadavg()[0]:.1f}")
    print(f"trial_models_cpu_seconds_per_1000={total:.1f}")


if __name__ == "__main__":
    main()
