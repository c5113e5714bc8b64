"""Scaling: time per night and peak memory of data_engineering + feature_engineering as the
number of nights grows, on the local backend and on a 2-worker Dask LocalCluster.

    python benchmarks/scaling.py                                # 1, 4, 16 nights of 8 h
    python benchmarks/scaling.py --nights 1 4 --hours 2         # the quick check
    python benchmarks/scaling.py --runs local:1                 # one configuration

Nights are synthetic sleep recordings (100 Hz, 4 channels: 2 EEG, EOG, EMG), one per subject.
Every size runs in a fresh process: a real KedroSession (hooks, kedro-mlflow, catalog) in a
temporary copy of the project (conf/, its own data/ and mlflow.db), executing this checkout's
code. The parent samples the resident memory (RSS) of that process and all its descendants
(joblib workers, the LocalCluster's scheduler and workers) every ``--interval`` seconds and
reports the peak of their sum. Time is the session's run alone (ingest, epoching, publishing,
features, and the MLflow run around them): not the interpreter's start-up and imports. The
``+s/night`` and ``+MB/night`` columns are the slopes between consecutive sizes: the cost of one
more night, free of the fixed costs that make small runs look slow per night. An untimed
15-minute run comes first, so that no size pays for cold file caches or kernel loading.

One change to the pipelines: ``make_folds`` is replaced by a node that puts every epoch in
fold 0, because a split needs at least two subjects and a 1-night run has one. Its cost on the
real pipeline (a group k-fold over the epoch table) is negligible.

Configurations (``--runs``, ``backend:workers``): ``local:1`` (every recording in turn in the
Kedro process), ``local:2`` (the default ``executor``: two joblib worker processes) and
``dask:2`` (a LocalCluster of two single-threaded workers, started by the run). The scaling
ratios compare sizes at the same concurrency, so the first configuration is ``local:1``: with
two workers a 1-night run cannot use the second one (a single task runs in the Kedro process,
with no pool), while from 2 nights on two recordings are in flight in two worker processes;
its memory steps up once, to workers x (worker + largest recording), and its time per night
can halve when two cores are free. The table shows those steps; the ratios from the second size
on (4 -> 16 nights) are printed for every configuration too.

Last line: ``scaling_time_ratio=<t_N / (N * t_1)> rss_ratio=<rss_N / rss_1>`` between the largest
and the smallest size of the first configuration. The issue's targets: time ratio <= 1.15 and
memory ratio <= 1.5 on the local backend.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq

from epochstack.scratch import copy_project, empty_data_layers

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCALING_PIPELINE = "scaling"

# The child process: the project's pipelines, make_folds replaced (see the module docstring), run
# in a real KedroSession; writes the run's seconds to the file given as its third argument.
CHILD = """
import json, sys, time
from pathlib import Path

import pandas as pd
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.pipeline import Pipeline, node

project, params, result = Path(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[3])


def one_fold(epoch_table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"epoch_id": epoch_table["epoch_id"].to_numpy(), "fold": 0})


def register_pipelines():
    from epochstack.pipelines import data_engineering, feature_engineering

    data = data_engineering.create_pipeline()
    folds = [n for n in data.nodes if n.name == "make_folds"]
    data = data - Pipeline(folds) + Pipeline([node(one_fold, "staged_epoch_table", "staged_folds", name="one_fold")])
    return {"SCALING": data + feature_engineering.create_pipeline()}


bootstrap_project(project)
pipelines.configure(__name__)  # SCALING, from register_pipelines above
with KedroSession.create(project_path=project, runtime_params=params) as session:
    start = time.perf_counter()
    session.run(pipeline_names=["SCALING"])
    seconds = time.perf_counter() - start
result.write_text(json.dumps({"seconds": seconds}))
""".replace("SCALING", SCALING_PIPELINE)


def make_project(folder: Path) -> Path:
    """A copy of the project's configuration with empty data layers and an MLflow database."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    project = copy_project(PROJECT_ROOT, folder / "project")
    # MLflow creates its tables once, outside any timing.
    SqlAlchemyStore(f"sqlite:///{project / 'mlflow.db'}", str(project / "mlruns"))
    return project


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (0 for those that just ended)."""
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_size(
    project: Path, nights: int, hours: float, backend: str, workers: int, interval: float
) -> dict:
    """One pipeline run of ``nights`` nights in a fresh process: seconds and peak tree RSS."""
    empty_data_layers(project)
    params = {
        "dataset": {
            "format": "synthetic",
            "synthetic": {
                "task": "sleep",
                "n_subjects": nights,
                "hours_per_subject": hours,
                "sfreq": 100.0,
            },
        },
        "executor": {"backend": backend, "address": None, "n_workers": workers},
    }
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(PROJECT_ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "DO_NOT_TRACK": "1",
        "KEDRO_DISABLE_TELEMETRY": "true",
        "MPLBACKEND": "Agg",
        "PYTHONWARNINGS": "ignore",
    }
    load_before = os.getloadavg()[0]
    log, result = project / f"run-{backend}{workers}-{nights}.log", project / "result.json"
    result.unlink(missing_ok=True)
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(project), json.dumps(params), str(result)],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        watched, peak = psutil.Process(child.pid), 0
        while child.poll() is None:
            peak = max(peak, tree_rss(watched))
            time.sleep(interval)
    if child.returncode != 0 or not result.exists():
        tail = "\n".join(log.read_text().strip().splitlines()[-15:])
        raise SystemExit(
            f"{backend}:{workers}, {nights} night(s): the run failed (exit {child.returncode}); log {log}:\n{tail}"
        )
    seconds = json.loads(result.read_text())["seconds"]
    epochs = json.loads((project / "data/08_reporting/data_quality.json").read_text())[
        "n_epochs_kept"
    ]
    feature_rows = pq.read_metadata(project / "data/04_feature/features.parquet").num_rows
    if feature_rows != epochs:
        raise SystemExit(
            f"{backend}:{workers}, {nights} night(s): {feature_rows} feature rows for {epochs} epochs; log {log}"
        )
    return {
        "backend": backend,
        "nights": nights,
        "hours": hours,
        "seconds": seconds,
        "peak_rss": peak,
        "epochs": epochs,
        "load": (load_before + os.getloadavg()[0]) / 2,
    }


def ratios(results: list[dict], smallest: int | None = None) -> tuple[float, float]:
    """(t_N / (N t_n), rss_N / rss_n) between the largest size N and the smallest n (or ``smallest``)."""
    small = min(
        (r for r in results if smallest is None or r["nights"] == smallest),
        key=lambda r: r["nights"],
    )
    large = max(results, key=lambda r: r["nights"])
    scale = large["nights"] / small["nights"]
    return large["seconds"] / (scale * small["seconds"]), large["peak_rss"] / small["peak_rss"]


def _marginal(previous: list[dict], r: dict, key: str, unit: float) -> str:
    """Extra ``key`` per extra night since the previous size (the slope, free of fixed costs)."""
    if not previous:
        return "-"
    return f"{(r[key] - previous[0][key]) / unit / (r['nights'] - previous[0]['nights']):.2f}"


def configuration(text: str) -> tuple[str, int]:
    """``backend:workers`` -> (backend, workers)."""
    backend, _, workers = text.partition(":")
    if backend not in ("local", "dask") or not workers.isdigit() or int(workers) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use local:<workers> or dask:<workers>, e.g. local:1"
        )
    return backend, int(workers)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--nights",
        type=int,
        nargs="+",
        default=[1, 4, 16],
        help="sizes, in nights (default 1 4 16)",
    )
    parser.add_argument("--hours", type=float, default=8.0, help="hours per night (default 8)")
    parser.add_argument(
        "--runs",
        type=configuration,
        nargs="+",
        default=[("local", 1), ("local", 2), ("dask", 2)],
        help="backend:workers configurations, in order; the last line's ratios are the first one's (default local:1 local:2 dask:2)",
    )
    parser.add_argument(
        "--interval", type=float, default=0.1, help="seconds between memory samples (default 0.1)"
    )
    args = parser.parse_args()
    sizes = sorted(set(args.nights))
    if len(sizes) < 2 or sizes[0] < 1:
        parser.error("--nights needs at least two sizes of 1 night or more")

    print(
        f"{len(sizes)} sizes x {len(args.runs)} configurations, {args.hours:g} h per night, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    print(
        f"{'run':8} {'nights':>6} {'epochs':>7} {'seconds':>8} {'s/night':>8} {'+s/night':>8} {'peak RSS MB':>11} {'+MB/night':>9} {'load':>5}",
        flush=True,
    )
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="epochstack-scaling-") as folder:
        project = make_project(Path(folder))
        # Untimed: the first run of a session pays for cold caches (files, compiled kernels).
        run_size(project, 1, 0.25, *args.runs[0], args.interval)
        for backend, workers in args.runs:
            name = f"{backend}:{workers}"
            for nights in sizes:
                r = run_size(project, nights, args.hours, backend, workers, args.interval)
                previous = results.setdefault(name, [])[-1:]
                results[name].append(r)
                print(
                    f"{name:8} {nights:>6} {r['epochs']:>7} {r['seconds']:>8.1f} {r['seconds'] / nights:>8.2f} {_marginal(previous, r, 'seconds', 1):>8} "
                    f"{r['peak_rss'] / 2**20:>11.0f} {_marginal(previous, r, 'peak_rss', 2**20):>9} {r['load']:>5.1f}",
                    flush=True,
                )
    for name, runs in results.items():
        line = "{}: {} vs {} nights: time ratio {:.3f}, memory ratio {:.3f}".format(
            name, max(sizes), min(sizes), *ratios(runs)
        )
        if len(sizes) > 2:
            line += "; {} vs {} nights: {:.3f}, {:.3f}".format(
                max(sizes), sizes[1], *ratios(runs, sizes[1])
            )
        print(line)
    time_ratio, rss_ratio = ratios(results[f"{args.runs[0][0]}:{args.runs[0][1]}"])
    print(f"scaling_time_ratio={time_ratio:.4f} rss_ratio={rss_ratio:.4f}")


if __name__ == "__main__":
    main()
