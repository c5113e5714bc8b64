"""Test accuracy on real UEA datasets: the platform (`kedro run --env uea`) beside the references.

For each dataset (a ``<Name>_TRAIN.ts`` / ``<Name>_TEST.ts`` pair), in the same run and on the
same split:

- the platform: a real ``kedro run --env uea`` in a temporary copy of the project (conf and
  pyproject; its own data/ and mlflow.db), read back from its metrics.json and stack_report.json:
  the stack (and what it selected) and each base model;
- the references: the library classifier of every raw-signal base model (aeon's
  ``MiniRocketClassifier``, ``MultiRocketClassifier``, ``HydraClassifier``,
  ``MultiRocketHydraClassifier``, ``QUANTClassifier``, ``DrCIFClassifier`` with the platform's
  number of trees; pyriemann's ``TSClassifier``, ``MDM``, ``FgMDM`` on OAS covariances), each
  with ``random_state=0``, fitted on the file's float64 values as aeon's loader reads them
  (unequal-length files: on the platform's resampled cases), whether or not the platform's
  model set includes them;
- the difference platform minus reference, per model and dataset, and the stack minus the best
  reference.

    python benchmarks/uea.py [TRAIN.ts ...]            # default: every pair under data/01_raw/uea
    python benchmarks/uea.py --all-models A_TRAIN.ts   # the platform runs every twin, not conf/uea's set

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
import warnings
from pathlib import Path

import numpy as np
import yaml

from epochstack.io.uea import read_uea_pair
from epochstack.models.signal_heads import reference_classifier
from epochstack.scratch import copy_project

PROJECT = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))  # the kedro of this environment
SAMPLES = PROJECT / "data" / "01_raw" / "uea"
TWINS = (
    "minirocket",
    "multirocket",
    "hydra",
    "multirocket_hydra",
    "quant",
    "drcif",
    "tangent_space",
    "mdm",
    "fgmdm",
)


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


def uea_stacking() -> dict:
    """conf/base's stacking block updated by conf/uea's (the keys benchmarks read)."""
    block = {}
    for env in ("base", "uea"):
        text = (PROJECT / "conf" / env / "parameters_stacking.yml").read_text()
        block = _merge(block, yaml.safe_load(text)["stacking"])
    return block


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else value
    return out


def platform_run(train: Path, test: Path, workdir: Path, models: list[str] | None) -> dict:
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
    params = f"dataset.train_path={train},dataset.test_path={test}"
    if models:
        params += f",stacking.enabled=[{','.join(models)}]"
    command = [KEDRO, "run", "--env", "uea", "--params", params]
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
    """Training and test cases ``(n, channels, times)`` and labels as the references read them:
    aeon's loader (float64) for equal-length files, else the platform's resampled cases."""
    from aeon.datasets import load_from_ts_file

    arrays = [load_from_ts_file(str(path)) for path in (train, test)]
    if all(len({x.shape[-1] for x in X}) == 1 for X, _ in arrays):
        (X, y), (Xt, yt) = arrays
        return np.stack(X).astype(np.float64), y, np.stack(Xt).astype(np.float64), yt
    cases = read_uea_pair(train, test)
    parts = {split: [c for c in cases if c.source_split == split] for split in ("train", "test")}
    X, Xt = (
        np.concatenate([c.epochs for c in parts[s]]).astype(np.float64) for s in ("train", "test")
    )
    y, yt = (np.array([c.labels[0] for c in parts[s]]) for s in ("train", "test"))
    return X, y, Xt, yt


def references(train: Path, test: Path, drcif_trees: int) -> dict[str, tuple[float, float]]:
    """Test accuracy and seconds of every reference classifier."""
    X, y, Xt, yt = read_split(train, test)
    out = {}
    for kind in TWINS:
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predicted = reference_classifier(kind, drcif_trees).fit(X, y).predict(Xt)
        out[kind] = (float((predicted == yt).mean()), time.perf_counter() - started)
    return out


def print_table(rows: list[dict]) -> None:
    """Per dataset and model: platform, reference, platform minus reference."""
    print()
    print(f"{'dataset':<16} {'model':<18} {'platform':>8} {'reference':>9} {'diff':>7}")
    for row in rows:
        platform, refs = row["accuracy"], row["references"]
        for model in [m for m in TWINS if m in platform or m in refs] + ["logreg"]:
            ours = platform.get(model)
            ref = refs.get(model, (None,))[0]
            diff = f"{ours - ref:+.3f}" if ours is not None and ref is not None else ""
            cells = [f"{v:.3f}" if v is not None else "-" for v in (ours, ref)]
            if ours is None and ref is None:
                continue
            print(f"{row['name']:<16} {model:<18} {cells[0]:>8} {cells[1]:>9} {diff:>7}")
        best = max(refs, key=lambda m: refs[m][0])
        stack = platform["stack"]
        print(
            f"{row['name']:<16} {'stack':<18} {stack:>8.3f} {refs[best][0]:>9.3f} "
            f"{stack - refs[best][0]:>+7.3f}  (selected {row['selected']}; best reference "
            f"{best}; kedro run {row['seconds']:.0f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "train_files", nargs="*", help="<Name>_TRAIN.ts files (their _TEST.ts beside them)"
    )
    parser.add_argument(
        "--all-models", action="store_true", help="the platform runs every twin and logreg"
    )
    args = parser.parse_args()
    stacking = uea_stacking()
    trees = int(stacking["base_models"]["drcif"]["params"]["n_estimators"])
    models = ["logreg", *TWINS] if args.all_models else None
    rows = []
    for name, train, test in dataset_pairs(args.train_files):
        with tempfile.TemporaryDirectory(prefix=f"uea-{name}-") as workdir:
            run = platform_run(train, test, Path(workdir), models)
        refs = references(train, test, trees)
        rows.append({"name": name, **run, "references": refs})
        bases = ", ".join(
            f"{m} {a:.3f}" for m, a in sorted(run["accuracy"].items()) if m != "stack"
        )
        ref_text = ", ".join(f"{m} {a:.3f} ({s:.0f} s)" for m, (a, s) in refs.items())
        print(
            f"{name}: stack {run['accuracy']['stack']:.3f} ({run['selected']}); {bases}; "
            f"run {run['seconds']:.0f} s | references: {ref_text}",
            flush=True,
        )
    print_table(rows)
    print(f"uea_mean_accuracy={np.mean([row['accuracy']['stack'] for row in rows]):.4f}")


if __name__ == "__main__":
    main()
