"""Project hooks: parameters checked before anything runs, and MLflow runs that say what they
are (name, tags, input data) and never stay RUNNING after their process died.

Kedro calls plugin hooks (kedro-mlflow, which opens the run in its ``before_pipeline_run``)
before project hooks, unless a project hook is marked ``tryfirst``.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl

from epochstack.config import validate_parameters
from epochstack.models.tuning import STORAGE_ENV
from epochstack.pipeline_registry import TRAINING_PIPELINES
from epochstack.signals.epoch_store import discard_uncommitted
from epochstack.tracking import (
    in_dvc_experiment_copy,
    log_epochs_input,
    mark_dead_runs_killed,
    process_tags,
    project_sqlite_url,
    relative_sqlite_file,
    run_name,
    task_name,
)
from epochstack.versioning import record_stage_outputs

logger = logging.getLogger(__name__)


def git_commit(project_path: Path) -> str:
    """The checked-out commit (with ``-dirty`` when the tree has changes), or ``unknown``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=project_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def _pipeline_names(run_params: dict[str, Any]) -> list[str]:
    return run_params.get("pipeline_names") or [run_params.get("pipeline_name") or "__default__"]


class RunNameHook:
    """Names the kedro-mlflow run ``<task>:<pipelines>@<env>`` (e.g. ``sleep:training@local``)
    before kedro-mlflow opens it, unless ``mlflow.yml`` sets a name."""

    def __init__(self):
        self._context = None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._context = context

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        config = getattr(
            self._context, "mlflow", None
        )  # kedro-mlflow's configuration of this session
        if config is None or config.tracking.run.name:
            return
        task = task_name(self._context.params.get("dataset") or {})
        config.tracking.run.name = run_name(
            task, run_params.get("env") or self._context.env, _pipeline_names(run_params)
        )


class RunTagsHook:
    """Tags the run with git commit, Kedro env, pipelines, host and process id, and marks runs
    of dead processes on this host KILLED (a ``kill -9``ed run never stays RUNNING)."""

    def __init__(self):
        self._tags: dict[str, str] = {}
        self._tagged = False

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        project_path = Path(run_params.get("project_path") or Path.cwd())
        commit = git_commit(project_path)
        self._tags = {
            "git_commit": commit,
            "kedro_env": str(run_params.get("env") or "local"),
            "kedro_pipelines": ",".join(p for p in _pipeline_names(run_params) if p),
            "mlflow.source.git.commit": commit.removesuffix("-dirty"),
            **process_tags(),
        }
        self._tagged = False
        self._tag_active_run()

    @hook_impl
    def before_node_run(self) -> None:
        self._tag_active_run()

    def _tag_active_run(self) -> None:
        run = mlflow.active_run()
        if self._tagged or run is None:
            return
        mlflow.set_tags(self._tags)
        self._tagged = True
        mark_dead_runs_killed(keep=run.info.run_id)


class RunInputHook:
    """Records the run's data with ``mlflow.log_input``: the training epochs (the first time a
    node reads or writes ``epoch_table``) and the epochs inference labels."""

    def __init__(self):
        self._params: dict = {}
        self._logged: set[str] = set()

    @hook_impl
    def after_context_created(self, context) -> None:
        self._params = context.params

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._logged = set()

    @hook_impl
    def before_node_run(self, inputs: dict[str, Any]) -> None:
        self._log(inputs)

    @hook_impl
    def after_node_run(self, outputs: dict[str, Any]) -> None:
        self._log(outputs)

    def _log(self, datasets: dict[str, Any]) -> None:
        if "epoch_table" in datasets and "training" not in self._logged:
            log_epochs_input(datasets["epoch_table"], self._params.get("dataset") or {}, "training")
            self._logged.add("training")
        if "inference_predictions" in datasets and "inference" not in self._logged:
            dataset = (self._params.get("inference") or {}).get("dataset") or {}
            log_epochs_input(datasets["inference_predictions"], dataset, "inference")
            self._logged.add("inference")


class DvcExperimentHook:
    """Inside a DVC temporary experiment copy, Optuna studies go to the main project's
    ``optuna.db`` (``$OPTUNA_STORAGE``), as ``mlflow.yml`` sends runs to its ``mlflow.db``."""

    @hook_impl
    def after_context_created(self, context) -> None:
        filename = relative_sqlite_file(context.params.get("optuna_storage"))
        if (
            filename
            and STORAGE_ENV not in os.environ
            and in_dvc_experiment_copy(context.project_path)
        ):
            os.environ[STORAGE_ENV] = project_sqlite_url(filename, context.project_path)
            logger.info("DVC experiment copy: Optuna studies in the main project's %s.", filename)


class DvcRecordHook:
    """After a run of whole DVC stages with the committed configuration (``kedro run`` or
    ``kedro run --pipelines <stage>``, no ``--params``, ``--env`` or node filters), its outputs
    are cached and recorded in ``dvc.lock`` (``epochstack.versioning``), so DVC continues from
    them. Runs that DVC itself starts (``dvc repro``, ``dvc exp run``) are DVC's to record."""

    PARTIAL = (
        "runtime_params",
        "from_nodes",
        "to_nodes",
        "node_names",
        "from_inputs",
        "to_outputs",
        "tags",
        "namespaces",
        "load_versions",
        "only_missing_outputs",
    )

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        if os.environ.get("DVC_STAGE") or run_params.get("env") not in (None, "local"):
            return
        if any(run_params.get(key) for key in self.PARTIAL):
            return
        names = _pipeline_names(run_params)
        stages = list(TRAINING_PIPELINES) if names == ["__default__"] else names
        record_stage_outputs(Path(run_params["project_path"]), stages)


class ParameterValidationHook:
    """Checks the parameters against ``epochstack.config`` as soon as the context exists.

    A bad parameter stops the run before any node reads, computes or saves anything (and
    before kedro-mlflow opens a run), with one ``ParameterError`` naming it.
    """

    @hook_impl
    def after_context_created(self, context) -> None:
        validate_parameters(context.params)


class StagedOutputsHook:
    """A failed run leaves no staged epoch store behind (data/ stays as the last good run left it)."""

    @hook_impl
    def on_pipeline_error(self) -> None:
        discard_uncommitted()
