"""How hard and how fast the synthetic sleep nights are (docs/synthetic_data.md, "Calibration").

Generates ``--subjects`` nights per difficulty (realistic and easy, the peer), then prints:

- difficulty: a band-power gradient-boosting stager (scipy Welch log powers in 15 log-spaced
  bands 0.5-30 Hz per EEG channel, EOG/EMG log variance, plus their centred 5-epoch means;
  sklearn HistGradientBoostingClassifier) trained on the first two thirds of the subjects and
  scored on the rest: 5-class kappa, 3-class kappa (Wake/NREM/REM), F1 per stage;
- the label-noise ceiling: kappa of the scored labels against the simulated true stages;
- spectra: per stage, the largest drop between neighbouring 1-Hz bins (1-30 Hz) of the mean
  log10 PSD of Fpz-Cz after removing its fitted 1/f line; median within-epoch excess kurtosis;
- stage proportions; speed: seconds per 10-h night (one process), realistic / easy ratio;
- with ``--figures DIR``: spectra.png (per-stage mean spectra) and stage_traces.png (a hypnogram
  and one 30-s epoch of each stage on every channel).

    python benchmarks/synthetic_sleep.py                       # 24 x 8 h, seed 7 (~2 min)
    python benchmarks/synthetic_sleep.py --figures docs/figures
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
from scipy import signal, stats
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import cohen_kappa_score, f1_score

from epochstack.synthetic import simulate_sleep_night
from epochstack.synthetic.stages import STAGES

EDGES = np.geomspace(0.5, 30.0, 16)
EEG, OTHER = [0, 1], [2, 3]


def night_features(x: np.ndarray, sfreq: float) -> np.ndarray:
    """The stager's features of one night's epochs ``(n, channels, samples)``."""
    f, p = signal.welch(x[:, EEG], fs=sfreq, nperseg=int(4 * sfreq), axis=-1)
    bands = np.stack(
        [
            p[..., (f >= lo) & (f < hi)].sum(-1)
            for lo, hi in zip(EDGES[:-1], EDGES[1:], strict=True)
        ],
        -1,
    )
    own = np.concatenate(
        [np.log10(bands + 1e-12).reshape(len(x), -1), np.log10(x[:, OTHER].var(-1) + 1e-12)], axis=1
    )
    context = pd.DataFrame(own).rolling(5, center=True, min_periods=1).mean().to_numpy()
    return np.concatenate([own, context], axis=1)


def measure(difficulty: str, subjects: range, hours: float, seed: int) -> dict:
    """Features, labels, true stages, spectra and kurtosis of every night of one difficulty."""
    out = {
        "X": [],
        "y": [],
        "true": [],
        "subject": [],
        "psd": {s: [] for s in STAGES},
        "kurtosis": {s: [] for s in STAGES},
    }
    for subject in subjects:
        night = simulate_sleep_night(
            subject, hours=hours, sfreq=100.0, seed=seed, difficulty=difficulty
        )
        rec = night.recording
        n = len(rec.epoch_labels)
        x = rec.signals.astype(np.float64).reshape(4, n, -1).transpose(1, 0, 2)
        out["X"].append(night_features(x, rec.sfreq))
        out["y"].append(rec.epoch_labels)
        out["true"].append(STAGES[night.true_stages])
        out["subject"].append(np.full(n, subject))
        f, p = signal.welch(x[:, 0], fs=rec.sfreq, nperseg=int(rec.sfreq), axis=-1)
        keep = (f >= 1) & (f <= 30)
        kurtosis = stats.kurtosis(x[:, 0], axis=-1)
        for stage in STAGES:
            mask = rec.epoch_labels == stage
            out["psd"][stage].append(np.log10(p[mask][:, keep] + 1e-30))
            out["kurtosis"][stage].append(kurtosis[mask])
    out["freqs"] = f[keep]
    for key in ("X", "y", "true", "subject"):
        out[key] = np.concatenate(out[key])
    for key in ("psd", "kurtosis"):
        out[key] = {s: np.concatenate(v) for s, v in out[key].items()}
    return out


def three_class(labels: np.ndarray) -> np.ndarray:
    return np.where(np.isin(labels, ["N1", "N2", "N3"]), "NREM", labels)


def worst_cliff(mean_log_psd: np.ndarray, freqs: np.ndarray) -> tuple[float, float]:
    """Largest drop between neighbouring bins after removing the fitted line in log-log; its frequency."""
    log_f = np.log10(freqs)
    residual = mean_log_psd - np.polyval(np.polyfit(log_f, mean_log_psd, 1), log_f)
    drops = residual[:-1] - residual[1:]
    i = int(np.argmax(drops))
    return float(drops[i]), float(freqs[i])


def report(name: str, data: dict, n_train: int) -> None:
    train = data["subject"] < data["subject"].min() + n_train
    model = HistGradientBoostingClassifier(random_state=0).fit(data["X"][train], data["y"][train])
    predicted = model.predict(data["X"][~train])
    scored, true = data["y"][~train], data["true"][~train]
    f1 = f1_score(scored, predicted, labels=list(STAGES), average=None)
    print(
        f"[{name}] band-power HGB, {n_train} train / {len(np.unique(data['subject'])) - n_train} test subjects, "
        f"{len(data['y'])} epochs"
    )
    print(
        f"  kappa5={cohen_kappa_score(scored, predicted):.3f} kappa3={cohen_kappa_score(three_class(scored), three_class(predicted)):.3f} "
        f"vs true stages kappa5={cohen_kappa_score(true, predicted):.3f}"
    )
    print("  F1 " + " ".join(f"{s}={v:.2f}" for s, v in zip(STAGES, f1, strict=True)))
    print(
        f"  label-noise ceiling (scored vs true, all subjects): kappa5={cohen_kappa_score(data['true'], data['y']):.3f} "
        f"kappa3={cohen_kappa_score(three_class(data['true']), three_class(data['y'])):.3f}"
    )
    shares = pd.Series(data["y"]).value_counts(normalize=True)
    print("  scored stages " + " ".join(f"{s}={shares.get(s, 0):.3f}" for s in STAGES))
    for stage in STAGES:
        drop, at = worst_cliff(data["psd"][stage].mean(axis=0), data["freqs"])
        print(
            f"  {stage:>3}: worst 1-Hz drop {drop:.2f} decades at {at:g} Hz; median kurtosis {np.median(data['kurtosis'][stage]):.2f}"
        )


def seconds_per_night(difficulty: str, hours: float, repeats: int = 3) -> float:
    """Median wall time of one 10-h night in this process."""
    times = []
    for subject in range(repeats):
        start = time.perf_counter()
        simulate_sleep_night(subject, hours=hours, sfreq=100.0, seed=1, difficulty=difficulty)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def figures(folder: str, data: dict, easy: dict, seed: int) -> None:
    import matplotlib.pyplot as plt

    os.makedirs(folder, exist_ok=True)
    colours = dict(
        zip(STAGES, ["tab:orange", "tab:olive", "tab:blue", "tab:purple", "tab:red"], strict=True)
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (title, d) in zip(axes, (("realistic", data), ("easy", easy)), strict=True):
        for stage in STAGES:
            ax.plot(d["freqs"], d["psd"][stage].mean(axis=0), label=stage, color=colours[stage])
        ax.set(xscale="log", title=f"{title}: mean log10 PSD of EEG Fpz-Cz", xlabel="Hz")
    axes[0].set_ylabel("log10 µV²/Hz")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "synthetic_spectra.png"), dpi=110)

    night = simulate_sleep_night(100, hours=8.0, sfreq=100.0, seed=seed)
    rec = night.recording
    fig = plt.figure(figsize=(11, 9))
    top = fig.add_subplot(6, 1, 1)
    code = {s: i for i, s in enumerate(["REM", "N3", "N2", "N1", "W"])}
    hours = np.arange(len(rec.epoch_labels)) * 30 / 3600
    top.step(hours, [code[s] for s in rec.epoch_labels], where="post", lw=0.8)
    top.set(
        yticks=range(5),
        yticklabels=list(code),
        xlabel="hours",
        title="scored hypnogram (adult, 8 h)",
    )
    for row, stage in enumerate(STAGES):
        candidates = np.flatnonzero(rec.epoch_labels == stage)
        epoch = candidates[len(candidates) // 2]
        ax = fig.add_subplot(6, 1, row + 2)
        t = np.arange(3000) / 100
        for channel, name in enumerate(rec.channel_names):
            ax.plot(
                t,
                rec.signals[channel, epoch * 3000 : (epoch + 1) * 3000] - 150 * channel,
                lw=0.5,
                label=name,
            )
        ax.set(yticks=[], xlim=(0, 30), ylabel=stage)
        if row == 0:
            ax.legend(loc="upper right", fontsize=7, ncol=4)
    fig.axes[-1].set_xlabel("seconds (channels 150 µV apart)")
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "synthetic_stage_traces.png"), dpi=110)
    print(f"figures written to {folder}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--figures", default=None, help="folder for the spectra and stage-trace figures"
    )
    args = parser.parse_args()
    subjects = range(100, 100 + args.subjects)
    n_train = 2 * args.subjects // 3
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average, {os.cpu_count()} cores)")
    realistic = measure("realistic", subjects, args.hours, args.seed)
    report("realistic", realistic, n_train)
    easy = measure("easy", subjects, args.hours, args.seed)
    report("easy", easy, n_train)
    slow, fast = seconds_per_night("realistic", 10.0), seconds_per_night("easy", 10.0)
    print(
        f"speed: realistic {slow:.2f} s per 10-h night, easy {fast:.2f} s, ratio {slow / fast:.2f} "
        f"(load {os.getloadavg()[0]:.2f})"
    )
    if args.figures:
        figures(args.figures, realistic, easy, args.seed)


if __name__ == "__main__":
    main()
