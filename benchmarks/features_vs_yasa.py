"""Epoch features: epochstack vs YASA's SleepStaging on the same 8-hour, 100 Hz night.

    python benchmarks/features_vs_yasa.py [--hours 8] [--repeats 7] [--threads 2]

Both extract per-epoch features of one EEG, one EOG and one EMG channel (30-s epochs), with
context (YASA: rolling and per-night normalised copies; epochstack: rolling windows and
per-recording robust normalisation). YASA's time includes its 0.4-30 Hz band-pass of the night
(epochstack filters in data_engineering, outside this timing). epochstack runs the set
comparable to YASA's (spectral + time domain + context) and the pipeline default (+ wavelets),
each on one thread and on ``--threads`` threads (YASA has no parallel option).

Every run is repeated ``--repeats`` times, YASA and epochstack interleaved so that both meet the
same machine load; a time is the best wall-clock time, with that run's CPU time (telling on a
shared machine: a short run is less often interrupted than a long one). One untimed warm-up
first (YASA compiles numba code on first use; epochstack loads its cached numba kernels, or
compiles them on the very first run: that first call is timed and printed). Peak memory is
tracemalloc's peak over a separate run. The load average is printed before and after.
The last line is ``speedup_vs_yasa=<ratio>``: wall time, comparable set, one thread.
Needs the ``bench`` extra (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import pandas as pd

from epochstack.signals.features import add_context_features, extract_features

SFREQ = 100.0
EPOCH_S = 30.0
CHANNELS = ["EEG Fpz-Cz", "EOG horizontal", "EMG submental"]
TYPES = ["eeg", "eog", "emg"]
COMPARABLE = ["spectral", "time_domain"]  # YASA's families: spectral, time domain, context
DEFAULT = ["spectral", "time_domain", "wavelet"]


def simple_night(hours: float, seed: int = 0) -> np.ndarray:
    """``(3, n_samples)`` microvolts: 1/f background plus rhythms whose strength drifts over the
    night (delta, alpha, sigma on EEG; slow eye movements on EOG; broadband tone on EMG)."""
    rng = np.random.default_rng(seed)
    n = int(hours * 3600 * SFREQ)
    freqs = np.fft.rfftfreq(n, 1 / SFREQ)
    shaping = 1 / np.sqrt(np.maximum(freqs, 0.1))
    background = np.fft.irfft(np.fft.rfft(rng.standard_normal((3, n))) * shaping, n=n)
    background *= 10 / background.std(axis=1, keepdims=True)
    t = np.arange(n) / SFREQ
    depth = 0.5 + 0.5 * np.sin(2 * np.pi * t / 5400)  # 90-min cycles
    eeg = (
        background[0]
        + 40 * depth * np.sin(2 * np.pi * 1.5 * t)
        + 8 * (1 - depth) * np.sin(2 * np.pi * 10 * t)
    )
    eog = background[1] + 30 * (1 - depth) * np.sin(2 * np.pi * 0.3 * t)
    emg = background[2] * 0.2 + 5 * (1 - depth) * rng.standard_normal(n)
    return np.stack([eeg, eog, emg]).astype(np.float32)


def yasa_features(signals: np.ndarray) -> pd.DataFrame:
    import mne
    import yasa

    info = mne.create_info(CHANNELS, SFREQ, TYPES)
    raw = mne.io.RawArray(signals.astype(np.float64) * 1e-6, info, verbose=False)  # volts
    staging = yasa.SleepStaging(
        raw, eeg_name=CHANNELS[0], eog_name=CHANNELS[1], emg_name=CHANNELS[2]
    )
    return staging.get_features()


def epochstack_features(signals: np.ndarray, config: dict) -> pd.DataFrame:
    n_times = int(EPOCH_S * SFREQ)
    n_epochs = signals.shape[1] // n_times
    epochs = (
        signals[:, : n_epochs * n_times]
        .reshape(len(CHANNELS), n_epochs, n_times)
        .transpose(1, 0, 2)
    )
    features = extract_features(epochs, SFREQ, CHANNELS, TYPES, config)
    epoch_ids = [f"night_{i:06d}" for i in range(n_epochs)]
    table = pd.DataFrame(
        {"epoch_id": epoch_ids, "recording_id": "night", "epoch_index": np.arange(n_epochs)}
    )
    features.insert(0, "epoch_id", epoch_ids)
    return add_context_features(features, table, config)


def timed(run: Callable[[], pd.DataFrame]) -> tuple[float, float, pd.DataFrame]:
    """Wall-clock and CPU seconds of one run, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def peak_memory_mb(run: Callable[[], pd.DataFrame]) -> float:
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def load_average() -> str:
    return (
        "load average "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        + f" on {os.cpu_count()} cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="epochstack threads of the parallel runs (YASA uses one)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"before: {load_average()}")

    signals = simple_night(args.hours)
    n_epochs = signals.shape[1] // int(EPOCH_S * SFREQ)
    print(
        f"night: {args.hours:g} h at {SFREQ:g} Hz, channels {CHANNELS}, {n_epochs} epochs of {EPOCH_S:g} s"
    )

    runs: dict[str, Callable[[], pd.DataFrame]] = {"yasa": lambda: yasa_features(signals)}
    for label, families in (("comparable", COMPARABLE), ("default", DEFAULT)):
        for threads in dict.fromkeys((1, args.threads)):
            config = {"families": families, "n_threads": threads}
            runs[f"{label}, {threads} thread{'s' if threads > 1 else ''}"] = lambda config=config: (
                epochstack_features(signals, config)
            )

    first_call, _, _ = timed(runs["comparable, 1 thread"])
    print(
        f"epochstack first call (numba kernels loaded from the cache, or compiled): {first_call:.2f} s"
    )
    results = {name: run() for name, run in runs.items()}  # warm-up
    timings: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleaved: every run meets the same load
        for name, run in runs.items():
            wall, cpu, results[name] = timed(run)
            timings[name].append((wall, cpu))

    best = {name: min(values) for name, values in timings.items()}
    yasa_wall, yasa_cpu = best.pop("yasa")
    print(
        f"{'yasa':31s}: {yasa_wall:7.3f} s (cpu {yasa_cpu:6.3f} s)  {results['yasa'].shape[1]:4d} features  "
        f"peak {peak_memory_mb(runs['yasa']):7.1f} MB"
    )
    for name, (wall, cpu) in best.items():
        table = results[name]
        finite = np.isfinite(table.drop(columns="epoch_id").to_numpy()).mean()
        spread = max(w for w, _ in timings[name]) / wall
        print(
            f"epochstack {name:20s}: {wall:7.3f} s (cpu {cpu:6.3f} s)  {table.shape[1] - 1:4d} features  "
            f"peak {peak_memory_mb(runs[name]):7.1f} MB  {finite:.2%} finite  "
            f"{yasa_wall / wall:5.1f}x faster than yasa (cpu {yasa_cpu / cpu:4.1f}x; slowest repeat {spread:.1f}x the best)"
        )
    print(f"after: {load_average()}")
    if args.threads > 1:
        print(
            f"speedup_vs_yasa_{args.threads}_threads={yasa_wall / best[f'comparable, {args.threads} threads'][0]:.2f}"
        )
    print(f"speedup_vs_yasa={yasa_wall / best['comparable, 1 thread'][0]:.2f}")


if __name__ == "__main__":
    main()
