"""MLflow runs a person can compare and trust, and the project's databases seen from DVC copies.

- Run names say task, Kedro env and pipelines (``sleep:training@local``), never ``__default__``.
- Every top-level run is tagged with this machine's host name and the process id; at the start
  of a run, RUNNING runs of this host whose process is gone (``kill -9``, power loss) are
  marked KILLED, with their nested runs.
- The training data is recorded with ``mlflow.log_input`` (name, content digest, source).
- Metrics: the headline numbers as MLflow metrics, the long tail stays in the logged JSON.
- The project's SQLite databases (``mlflow.db``, ``optuna.db``) are found from the project root,
  also when Kedro starts in ``notebooks/`` or inside a DVC temporary experiment copy
  (``.dvc/tmp/exps/...``, used by ``dvc exp run --temp`` and queued experiments): every
  experiment lands in the main project's databases.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import warnings
from pathlib import Path

import mlflow
import pandas as pd
from kedro.utils import find_kedro_project
from mlflow import MlflowClient
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset_source_registry import resolve_dataset_source

logger = logging.getLogger(__name__)

HOST_TAG, PID_TAG = "epochstack.host", "epochstack.pid"
DVC_EXPERIMENT_COPY = (".dvc", "tmp", "exps")
DVC_EXP_NAME = "DVC_EXP_NAME"  # set by DVC for `dvc exp run`
# Where each source format keeps its data (the MLflow input's source).
SOURCE_PARAMETER = {
    "edf": ("edf", "path"),
    "mat": ("mat", "path"),
    "csv": ("csv", "signals_path"),
    "h5": ("h5", "x_path"),
    "uea_ts": ("train_path",),
}


# --- the project's databases --------------------------------------------------------------------


def main_project_root(path: str | Path | None = None) -> Path:
    """The project folder that owns ``path`` (default: cwd).

    Inside a DVC temporary experiment copy (``<root>/.dvc/tmp/exps/<copy>``) that is ``<root>``,
    the repository DVC also names in ``$DVC_ROOT``; anywhere else it is ``path`` itself.
    """
    path = Path(path or Path.cwd()).resolve()
    parts = path.parts
    for i in range(len(parts) - len(DVC_EXPERIMENT_COPY) + 1):
        if parts[i : i + len(DVC_EXPERIMENT_COPY)] == DVC_EXPERIMENT_COPY:
            return Path(*parts[:i])
    return path


def in_dvc_experiment_copy(path: str | Path | None = None) -> bool:
    return main_project_root(path) != Path(path or Path.cwd()).resolve()


def project_sqlite_url(filename: str, path: str | Path | None = None) -> str:
    """``sqlite:///`` URL of ``filename`` at the root of the Kedro project holding ``path``
    (default: cwd, e.g. ``notebooks/``), or of the main project inside a DVC experiment copy,
    so notebooks and temporary copies use the project's own databases."""
    start = Path(path or Path.cwd()).resolve()
    return f"sqlite:///{main_project_root(find_kedro_project(start) or start) / filename}"


def project_artifact_location(folder: str) -> str | None:
    """MLflow's own default (None) except in a DVC experiment copy: the main project's folder,
    so an experiment first created there does not keep its artifacts in a copy DVC deletes."""
    return str(main_project_root() / folder) if in_dvc_experiment_copy() else None


def relative_sqlite_file(url: str | None) -> str | None:
    """The file name of a relative ``sqlite:///<file>`` URL, else None."""
    match = re.match(r"^sqlite:///(?!/)(.+)$", url or "")
    return match.group(1) if match else None


# --- run names and tags -------------------------------------------------------------------------


def task_name(dataset: dict) -> str:
    """``sleep`` / ``seizure`` for synthetic data, else the source format (``edf``, ``uea_ts``...)."""
    if dataset.get("format", "synthetic") == "synthetic":
        return str((dataset.get("synthetic") or {}).get("task", "sleep"))
    return str(dataset.get("format"))


def pipelines_label(pipeline_names: list[str] | str | None) -> str:
    """``training`` for the default run (every training pipeline), else the names joined by ``+``."""
    names = [pipeline_names] if isinstance(pipeline_names, str) else list(pipeline_names or [])
    names = ["training" if n in (None, "", "__default__") else n for n in names] or ["training"]
    return "+".join(dict.fromkeys(names))


def run_name(task: str, env: str | None, pipeline_names) -> str:
    """``<task>:<pipelines>@<env>``, plus the DVC experiment's name inside ``dvc exp run``."""
    name = f"{task}:{pipelines_label(pipeline_names)}@{env or 'local'}"
    experiment = os.environ.get(DVC_EXP_NAME)
    return f"{name} [{experiment}]" if experiment else name


def process_tags() -> dict[str, str]:
    """Host and process of this run: what lets a later run tell that it died."""
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    if os.environ.get(DVC_EXP_NAME):
        tags["dvc.exp_name"] = os.environ[DVC_EXP_NAME]
    return tags


def process_alive(pid: int, started_ms: int | None) -> bool:
    """Whether process ``pid`` runs and was started before ``started_ms`` (not a reused pid)."""
    import psutil

    try:
        created = psutil.Process(int(pid)).create_time() * 1000
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
    return started_ms is None or created <= started_ms + 1000


def _running(client: MlflowClient, experiment_ids: list[str], condition: str) -> list:
    return client.search_runs(
        experiment_ids, f"attributes.status = 'RUNNING' and {condition}", max_results=1000
    )


def mark_dead_runs_killed(
    client: MlflowClient | None = None, host: str | None = None, keep: str | None = None
) -> list[str]:
    """Mark RUNNING runs of ``host`` whose process is dead as KILLED, nested runs included.

    Only runs tagged with this host's name are judged (a process on another machine cannot be
    checked from here); ``keep`` (the run just started) is never touched. Returns their ids.
    """
    client = client or MlflowClient()
    host = host or socket.gethostname()
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    if not experiment_ids:
        return []
    dead = [
        run
        for run in _running(client, experiment_ids, f"tags.`{HOST_TAG}` = '{host}'")
        if run.info.run_id != keep
        and not process_alive(run.data.tags.get(PID_TAG, "-1"), run.info.start_time)
    ]
    killed, queue = [], [run.info.run_id for run in dead]
    while queue:
        run_id = queue.pop()
        if run_id in killed or run_id == keep:
            continue
        client.set_terminated(run_id, status="KILLED")
        killed.append(run_id)
        queue += [
            child.info.run_id
            for child in _running(client, experiment_ids, f"tags.`mlflow.parentRunId` = '{run_id}'")
        ]
    if killed:
        logger.warning(
            "Marked %d MLflow run(s) of dead processes on %s as KILLED: %s.",
            len(killed),
            host,
            killed[:5],
        )
    return killed


# --- the input data -----------------------------------------------------------------------------


def table_digest(table: pd.DataFrame) -> str:
    """Content hash of a table (every row, every column, in order)."""
    hashed = pd.util.hash_pandas_object(table.astype(str), index=False).to_numpy()
    return hashlib.sha256(
        hashed.tobytes() + ",".join(map(str, table.columns)).encode()
    ).hexdigest()[:16]


def dataset_source(dataset: dict):
    """Where the recordings come from: the source file/folder, or the generator's settings."""
    fmt = dataset.get("format", "synthetic")
    if fmt == "synthetic":
        return CodeDatasetSource(
            {
                "generator": "epochstack.synthetic",
                **{k: str(v) for k, v in (dataset.get("synthetic") or {}).items()},
            }
        )
    node = dataset
    for key in SOURCE_PARAMETER.get(fmt, ()):
        node = node.get(key) if isinstance(node, dict) else None
    if not node:
        return CodeDatasetSource({"format": str(fmt)})
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # "can be interpreted in multiple ways": all are local files
        return resolve_dataset_source(str(Path(str(node)).resolve()))


def dataset_name(dataset: dict) -> str:
    fmt = dataset.get("format", "synthetic")
    if fmt == "synthetic":
        syn = dataset.get("synthetic") or {}
        return f"synthetic-{syn.get('task')}-{syn.get('n_subjects')}x{syn.get('hours_per_subject')}h-seed{syn.get('seed')}"
    source = dataset_source(dataset).to_dict().get("uri") or fmt
    return f"{fmt}:{Path(source).name}"


def log_epochs_input(epoch_table: pd.DataFrame, dataset: dict, context: str) -> None:
    """Record the epochs a run learns from (or labels) as the run's input dataset."""
    if mlflow.active_run() is None:
        return
    columns = [
        c
        for c in ("epoch_id", "recording_id", "subject_id", "t_start_s", "label")
        if c in epoch_table.columns
    ]
    table = epoch_table[columns].reset_index(drop=True)
    data = mlflow.data.from_pandas(
        table,
        source=dataset_source(dataset),
        name=dataset_name(dataset),
        targets="label" if "label" in table.columns and table["label"].notna().any() else None,
        digest=table_digest(table),
    )
    mlflow.log_input(data, context=context)


# --- metrics ------------------------------------------------------------------------------------
