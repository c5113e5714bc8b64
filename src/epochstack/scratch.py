"""Throwaway copies of an epochstack project, for tests and benchmarks that run real Kedro sessions.

A copy holds the project's ``conf/`` and ``pyproject.toml``, empty data layers and an empty
``src/`` (Kedro checks that it exists; the code is the installed package), so that runs in it never
touch the project's own ``data/`` or ``mlflow.db``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

DATA_LAYERS = (
    "01_raw",
    "02_intermediate",
    "03_primary",
    "04_feature",
    "05_model_input",
    "06_models",
    "07_model_output",
    "08_reporting",
)


def copy_project(source: Path, destination: Path, *, local_conf: bool = True) -> Path:
    """Copy the project at ``source`` to ``destination`` (which must not exist) and return it.

    ``local_conf=False`` leaves out ``conf/local`` (a user's own settings), keeping an empty one.
    """
    ignore = None if local_conf else shutil.ignore_patterns("local")
    shutil.copytree(source / "conf", destination / "conf", ignore=ignore)
    (destination / "conf" / "local").mkdir(exist_ok=True)
    shutil.copy(source / "pyproject.toml", destination / "pyproject.toml")
    (destination / ".telemetry").write_text("consent: false\n")
    (destination / "src").mkdir()
    empty_data_layers(destination)
    return destination


def empty_data_layers(project: Path) -> None:
    """Replace ``project/data`` with empty data layers."""
    shutil.rmtree(project / "data", ignore_errors=True)
    for layer in DATA_LAYERS:
        (project / "data" / layer).mkdir(parents=True)
