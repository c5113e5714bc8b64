"""Epoch features: epochstack vs YASA's SleepStaging on the same 8-hour, 100 Hz night.

    python benchmarks/features_vs_yasa.py [--hours 8] [--repeats 3] [--threads 2]

Both extract per-epoch features of one EEG, one EOG and one EMG channel (30-s epochs), with
context (YASA: rolling and per-night normalised copies; epochstack: rolling windows and
per-recording robust normalisation). YASA's time includes its 0.4-30 Hz band-pass of the night
(epochstack filters in data_engineering, outside this timing). epochstack runs twice: the set
comparable to YASA's (spectral + time domain + context) and the pipeline default (+ wavelets).

Times are the best wall-clock time of ``--repeats`` runs after one untimed warm-up (YASA
compiles numba code on first use), with that run's CPU time (telling on a shared machine).
Peak memory is tracemalloc's peak over a separate run (numpy reports its buffers to
tracemalloc). The last line is ``speedup_vs_yasa=<ratio>``: the comparable set on ``--threads``
threads (default 2: the 2-core machine, and the pipeline's default ``n_jobs``; YASA has no
parallel option). The 1-thread ratio is printed too.
Needs the ``bench`` extra (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import logging
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
    eeg = background[0] + 40 * depth * np.sin(2 * np.pi * 1.5 * t) + 8 * (1 - depth) * np.sin(2 * np.pi * 10 * t)
    eog = background[1] + 30 * (1 - depth) * np.sin(2 * np.pi * 0.3 * t)
    emg = background[2] * 0.2 + 5 * (1 - depth) * rng.standard_normal(n)
    return np.stack([eeg, eog, emg]).astype(np.float32)


def yasa_features(signals: np.ndarray) -> pd.DataFrame:
    import mne
    import yasa

    info = mne.create_info(CHANNELS, SFREQ, TYPES)
    raw = mne.io.RawArray(signals.astype(np.float64) * 1e-6, info, verbose=False)  # volts
    staging = yasa.SleepStaging(raw, eeg_name=CHANNELS[0], eog_name=CHANNELS[1], emg_name=CHANNELS[2])
    return staging.get_features()


def epochstack_features(signals: np.ndarray, config: dict) -> pd.DataFrame:
    n_times = int(EPOCH_S * SFREQ)
    n_epochs = signals.shape[1] // n_times
    epochs = signals[:, : n_epochs * n_times].reshape(len(CHANNELS), n_epochs, n_times).transpose(1, 0, 2)
    features = extract_features(epochs, SFREQ, CHANNELS, TYPES, config)
    epoch_ids = [f"night_{i:06d}" for i in range(n_epochs)]
    table = pd.DataFrame({"epoch_id": epoch_ids, "recording_id": "night", "epoch_index": np.arange(n_epochs)})
    features.insert(0, "epoch_id", epoch_ids)
    return add_context_features(features, table, config)


def best_time(run: Callable[[], pd.DataFrame], repeats: int) -> tuple[float, float, pd.DataFrame]:
    """Best wall-clock seconds of ``repeats`` runs, the CPU seconds of that run, and its result."""
    result = run()  # warm-up: imports, numba compilation, page cache
    timings = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        timings.append((time.perf_counter() - wall, time.process_time() - cpu))
    wall, cpu = min(timings)
    return wall, cpu, result


def peak_memory_mb(run: Callable[[], pd.DataFrame]) -> float:
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="epochstack threads (YASA uses one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    signals = simple_night(args.hours)
    n_epochs = signals.shape[1] // int(EPOCH_S * SFREQ)
    print(f"night: {args.hours:g} h at {SFREQ:g} Hz, channels {CHANNELS}, {n_epochs} epochs of {EPOCH_S:g} s")

    yasa_s, yasa_cpu, yasa_table = best_time(lambda: yasa_features(signals), args.repeats)
    yasa_mb = peak_memory_mb(lambda: yasa_features(signals))
    print(f"yasa       : {yasa_s:7.3f} s (cpu {yasa_cpu:6.3f} s)  {yasa_table.shape[1]:4d} features  peak {yasa_mb:7.1f} MB")

    # YASA's families are spectral, time-domain (incl. fractal dimensions) and context; the
    # comparable epochstack set is spectral + time-domain + context (no wavelets).
    runs = [
        ("comparable", ("spectral", "time_domain"), 1),
        ("comparable", ("spectral", "time_domain"), args.threads),
        ("default", ("spectral", "time_domain", "wavelet"), args.threads),
    ]
    comparable_s = None
    for label, families, threads in dict.fromkeys(runs):  # one run when --threads 1
        config = {"families": list(families), "n_threads": threads}
        seconds, cpu, table = best_time(lambda config=config: epochstack_features(signals, config), args.repeats)
        megabytes = peak_memory_mb(lambda config=config: epochstack_features(signals, config))
        finite = np.isfinite(table.drop(columns="epoch_id").to_numpy()).mean()
        print(
            f"epochstack : {seconds:7.3f} s (cpu {cpu:6.3f} s)  {table.shape[1] - 1:4d} features  peak {megabytes:7.1f} MB  "
            f"({label} set, {threads} thread{'s' if threads > 1 else ''}, {finite:.2%} finite, "
            f"{yasa_s / seconds:.1f}x faster than yasa)"
        )
        if label == "comparable" and threads == args.threads:
            comparable_s = seconds
    print(f"speedup_vs_yasa={yasa_s / comparable_s:.2f}")


if __name__ == "__main__":
    main()
