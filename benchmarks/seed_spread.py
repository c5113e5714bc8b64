"""How far the default run's headline metrics move with the seeds (docs/tracking.md, README).

Runs the default training run (``kedro run``, conf/base) in throwaway copies of the project, one
per seed, and prints the held-out test scores of the stack with their mean and spread:

- ``models``: the data fixed (``dataset.synthetic.seed`` 42), the seeds of everything that
  learns changed together (``deep_models.seed``, ``stacking.seed``, ``evaluation.seed``): the
  noise between two experiments on the same data;
- ``data``: new simulated subjects and test split (``dataset.synthetic.seed``, ``splits.seed``)
  with the model seeds fixed: how far the number moves on another sample of ten nights.

    python benchmarks/seed_spread.py                    # 5 seeds of each, about 15 min on 2 cores
    python benchmarks/seed_spread.py --kind models --seeds 1 2 3

A difference between two experiments smaller than about twice the ``models`` spread is noise.
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

from epochstack.scratch import copy_project

PROJECT = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))
SEED_PARAMETERS = {
    "models": ("deep_models.seed", "stacking.seed", "evaluation.seed"),
    "data": ("dataset.synthetic.seed", "splits.seed"),
}


def run_once(folder: Path, kind: str, seed: int) -> dict:
    """One default run with the seeds of ``kind`` set to ``seed``; its test scores and time."""
    project = copy_project(PROJECT, folder / f"{kind}-{seed}", local_conf=False)
    params = ",".join(f"{name}={seed}" for name in SEED_PARAMETERS[kind])
    env = os.environ | {"DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true", "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    subprocess.run(
        [KEDRO, "run", "--params", params],
        cwd=project,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = json.loads((project / "data/08_reporting/metrics.json").read_text())
    return {
        "kappa": metrics["test"]["cohen_kappa"],
        "macro_f1": metrics["test"]["macro_f1"],
        "selected": metrics["stack"]["selected"],
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=[*SEED_PARAMETERS, "both"], default="both")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4])
    args = parser.parse_args()
    kinds = list(SEED_PARAMETERS) if args.kind == "both" else [args.kind]
    with tempfile.TemporaryDirectory(prefix="epochstack-seeds-") as folder:
        for kind in kinds:
            rows = []
            for seed in args.seeds:
                row = run_once(Path(folder), kind, seed)
                rows.append(row)
                print(
                    f"{kind:6s} seed {seed:3d}: test kappa {row['kappa']:.4f}  macro F1 "
                    f"{row['macro_f1']:.4f}  stack {row['selected']}  ({row['seconds']:.0f} s)",
                    flush=True,
                )
            for metric in ("kappa", "macro_f1"):
                values = np.array([row[metric] for row in rows])
                print(
                    f"{kind}_{metric}_mean={values.mean():.4f} {kind}_{metric}_sd="
                    f"{values.std(ddof=1):.4f} {kind}_{metric}_range={values.min():.4f}-"
                    f"{values.max():.4f} (n={len(values)})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
