"""Shared fixtures. Integration tests run real Kedro sessions in a temporary copy of the project."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest

from epochstack.scratch import copy_project

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Small enough for seconds-long runs, large enough for four CV folds and two test subjects.
TINY_SLEEP = {
    "dataset": {
        "synthetic": {"task": "sleep", "n_subjects": 6, "hours_per_subject": 0.5, "seed": 7}
    },
    "splits": {"n_folds": 2, "n_test_subjects": 2},
}

# Quick training settings: a few trees, two Optuna trials for the searched model.
FAST_STACKING = {
    "stacking": {
        "base_models": {
            "hgb": {"params": {"max_iter": 20}},
            "logreg": {"search": {"n_trials": 2, "n_startup_trials": 2}},
            "extra_trees": {"params": {"n_estimators": 20}},
        },
    },
    "evaluation": {"protocol": "non_nested"},
}

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")


@contextmanager
def mlflow_store(uri: str):
    """MLflow's tracking and registry URIs set to ``uri``, then restored, environment included.

    ``mlflow.set_registry_uri`` also sets ``MLFLOW_REGISTRY_URI`` in the environment, and a
    registry URI left there makes every later run of the process register its models there.
    """
    import mlflow

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ[name] = uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_registry_uri(None)  # back to the environment, then the tracking URI
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@cache
def mlflow_template_db() -> Path:
    """An empty MLflow SQLite database, made once per test process.

    Creating MLflow's tables takes seconds; copying a made one into each project does not.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = Path(tempfile.mkdtemp(prefix="epochstack-mlflow-"))
    SqlAlchemyStore(f"sqlite:///{folder / 'mlflow.db'}", str(folder / "mlartifacts"))
    return folder / "mlflow.db"


class KedroProject:
    """A throwaway copy of the project (conf + pyproject) with its own data/ and mlflow.db."""

    def __init__(self, path: Path):
        self.path = copy_project(PROJECT_ROOT, path)
        shutil.copy(mlflow_template_db(), path / "mlflow.db")

    def run(
        self, pipeline_names: list[str] | str, params: dict | None = None, env: str | None = None
    ):
        """Run pipelines in a real KedroSession; returns the run's outputs."""
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        names = [pipeline_names] if isinstance(pipeline_names, str) else list(pipeline_names)
        with self._inside():
            bootstrap_project(self.path)
            with KedroSession.create(
                project_path=self.path, env=env, runtime_params=params or {}
            ) as session:
                return session.run(pipeline_names=names)

    def catalog(self, params: dict | None = None, env: str | None = None):
        """The project's catalog (with the same runtime params as a run)."""
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        with self._inside():
            bootstrap_project(self.path)
            session = KedroSession.create(
                project_path=self.path, env=env, runtime_params=params or {}
            )
            return session.load_context().catalog

    @contextmanager
    def _inside(self):
        """cwd and MLflow store of this project; no MLflow run left open afterwards.

        MLflow caches the tracking URI per process and kedro-mlflow leaves its run on the stack,
        so without this a second project in the same process would log into the first one's db.
        """
        import mlflow

        cwd = os.getcwd()
        os.chdir(self.path)
        try:
            with mlflow_store(f"sqlite:///{self.path / 'mlflow.db'}"):
                yield
        finally:
            while mlflow.active_run():
                mlflow.end_run()
            os.chdir(cwd)


@pytest.fixture
def kedro_project(tmp_path: Path) -> KedroProject:
    """A fresh project copy in ``tmp_path``: run pipelines with ``kedro_project.run(...)``."""
    return KedroProject(tmp_path / "project")


@pytest.fixture(scope="session")
def tiny_sleep_params() -> dict:
    return TINY_SLEEP


def deep_merge(base: dict, extra: dict) -> dict:
    """``base`` updated recursively with ``extra`` (for building runtime params in tests)."""
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = (
            deep_merge(merged[key], value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else value
        )
    return merged


@pytest.fixture(scope="session")
def merge_params() -> Callable[[dict, dict], dict]:
    return deep_merge
