"""Project hooks: parameters checked before anything runs, and MLflow tags that make every run
traceable to code, config and pipeline."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl

from epochstack.config import validate_parameters
from epochstack.signals.epoch_store import discard_uncommitted

logger = logging.getLogger(__name__)


def git_commit(project_path: Path) -> str:
    """The checked-out commit (with ``-dirty`` when the tree has changes), or ``unknown``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project_path, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=project_path, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


class RunTagsHook:
    """Tags the kedro-mlflow run with git commit, Kedro env and pipeline names."""

    def __init__(self):
        self._tags: dict[str, str] = {}
        self._tagged = False

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        project_path = Path(run_params.get("project_path") or Path.cwd())
        pipelines = run_params.get("pipeline_names") or [run_params.get("pipeline_name") or "__default__"]
        self._tags = {
            "git_commit": git_commit(project_path),
            "kedro_env": str(run_params.get("env") or "local"),
            "kedro_pipelines": ",".join(p for p in pipelines if p),
            "mlflow.source.git.commit": git_commit(project_path).removesuffix("-dirty"),
        }
        self._tagged = False

    @hook_impl
    def before_node_run(self) -> None:
        # kedro-mlflow opens its run in its own before_pipeline_run; tag once it is active.
        if not self._tagged and mlflow.active_run() is not None:
            mlflow.set_tags(self._tags)
            self._tagged = True


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
