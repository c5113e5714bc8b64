"""Test accuracy on real UEA datasets: the platform (`kedro run --env uea`) beside two peers.

For each dataset (a ``<Name>_TRAIN.ts`` / ``<Name>_TEST.ts`` pair), in the same run and on the
same split:

- the platform: a real ``kedro run --env uea`` in a temporary copy of the project (conf and
  pyproject; its own data/ and mlflow.db), read back from its metrics.json and stack_report.json:
  the stack and each base model;
- aeon's ``MiniRocketClassifier`` (MiniRocket transform + ``RidgeClassifierCV``), defaults;
- a logistic baseline: a logistic regression on five statistics per channel.

Peers read the cases with the platform's own reader, so unequal lengths are handled alike.
Stand-alone:

    python benchmarks/uea.py [TRAIN.ts ...]      # default: every pair under data/01_raw/uea

The last line is ``uea_mean_accuracy=<mean stack test accuracy over the datasets>``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from epochstack.io.uea import read_uea_pair
from epochstack.scratch import copy_project

PROJECT = Path(__file__).resolve().parents[1]
SAMPLES = PROJECT / "data" / "01_raw" / "uea"


def dataset_pairs(train_files: list[str]) -> list[tuple[str, Path, Path]]:
    """``(name, train, test)`` for each given ``*_TRAIN.ts`` (default: every pair in SAMPLES)."""
    trains = [Path(f) for f in train_files] or sorted(SAMPLES.glob("*_TRAIN.ts"))
    pairs = []
    for train in trains:
        test = train.with_name(train.name.replace("_TRAIN", "_TEST"))
        if not train.is_file() or not test.is_file() or test == train:
            sys.exit(f"{train}: expected a <Name>_TRAIN.ts file with a <Name>_TEST.ts beside it.")
        pairs.append((train.name.removesuffix("_TRAIN.ts"), train.resolve(), test.resolve()))
    return pairs


def platform_run(train: Path, test: Path, workdir: Path) -> dict:
    """``kedro run --env uea`` in a fresh copy of the project; test accuracies and the stack's choice."""
    copy_project(PROJECT, workdir, local_conf=False)
    env = {
        **os.environ,
        "DO_NOT_TRACK": "1",
        "KEDRO_DISABLE_TELEMETRY": "true",
        "MPLBACKEND": "Agg",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PROJECT / "src"), os.environ.get("PYTHONPATH")])
        ),
    }
    command = [
        "kedro",
        "run",
        "--env",
        "uea",
        "--params",
        f"dataset.train_path={train},dataset.test_path={test}",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        tail = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()][-3:]
        sys.exit(f"kedro run --env uea failed on {train.name}:\n" + "\n".join(tail))
    metrics = json.loads((workdir / "data" / "08_reporting" / "metrics.json").read_text())
    stack = json.loads((workdir / "data" / "08_reporting" / "stack_report.json").read_text())
    accuracy = {model: scores["test"]["accuracy"] for model, scores in metrics["models"].items()}
    return {"accuracy": accuracy, "selected": stack["selected"], "seconds": seconds}


def read_split(train: Path, test: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and test cases ``(n, channels, times)`` and labels, as the platform reads them."""
    cases = read_uea_pair(train, test)
    parts = {split: [c for c in cases if c.source_split == split] for split in ("train", "test")}
    X, Xt = (
        np.concatenate([c.epochs for c in parts[s]]).astype(np.float64) for s in ("train", "test")
    )
    y, yt = (np.array([c.labels[0] for c in parts[s]]) for s in ("train", "test"))
    return X, y, Xt, yt


def minirocket_peer(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, seed: int = 0) -> np.ndarray:
    from aeon.classification.convolution_based import MiniRocketClassifier

    return MiniRocketClassifier(random_state=seed).fit(X, y).predict(Xt)


def channel_statistics(X: np.ndarray) -> np.ndarray:
    """Mean, standard deviation, minimum, maximum and mean absolute step of every channel."""
    return np.concatenate(
        [X.mean(2), X.std(2), X.min(2), X.max(2), np.abs(np.diff(X, axis=2)).mean(2)], axis=1
    )


def logistic_baseline(X: np.ndarray, y: np.ndarray, Xt: np.ndarray) -> np.ndarray:
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    return model.fit(channel_statistics(X), y).predict(channel_statistics(Xt))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "train_files", nargs="*", help="<Name>_TRAIN.ts files (their _TEST.ts beside them)"
    )
    args = parser.parse_args()
    rows = []
    for name, train, test in dataset_pairs(args.train_files):
        with tempfile.TemporaryDirectory(prefix=f"uea-{name}-") as workdir:
            run = platform_run(train, test, Path(workdir))
        X, y, Xt, yt = read_split(train, test)
        started = time.perf_counter()
        minirocket = float((minirocket_peer(X, y, Xt) == yt).mean())
        minirocket_s = time.perf_counter() - started
        baseline = float((logistic_baseline(X, y, Xt) == yt).mean())
        rows.append(
            {
                "name": name,
                "shape": f"{len(y)}/{len(yt)} x {X.shape[1]} x {X.shape[2]}",
                **run,
                "minirocket": minirocket,
                "minirocket_s": minirocket_s,
                "baseline": baseline,
            }
        )
        bases = ", ".join(
            f"{m} {a:.3f}" for m, a in sorted(run["accuracy"].items()) if m != "stack"
        )
        print(
            f"{name}: stack {run['accuracy']['stack']:.3f} ({run['selected']}); {bases}; "
            f"MiniRocket+ridge {minirocket:.3f}; logistic baseline {baseline:.3f}; run {run['seconds']:.0f} s",
            flush=True,
        )

    print()
    print(
        f"{'dataset':<14} {'train/test x ch x len':<22} {'stack':>6} {'best base':>22} {'MiniRocket+ridge':>17} {'logistic':>9} {'run s':>6}"
    )
    for row in rows:
        bases = {m: a for m, a in row["accuracy"].items() if m != "stack"}
        best = max(bases, key=bases.get)
        print(
            f"{row['name']:<14} {row['shape']:<22} {row['accuracy']['stack']:>6.3f} {f'{best} {bases[best]:.3f}':>22} "
            f"{row['minirocket']:>17.3f} {row['baseline']:>9.3f} {row['seconds']:>6.0f}"
        )
    print(f"uea_mean_accuracy={np.mean([row['accuracy']['stack'] for row in rows]):.4f}")


if __name__ == "__main__":
    main()
