"""Helpers for pipelines whose shape (one namespace per model) comes from the parameters."""

from __future__ import annotations

import os
from functools import partial, update_wrapper
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from kedro.framework.project import settings


def project_parameters(conf_source: str | Path | None = None, env: str | None = None) -> dict[str, Any]:
    """The project's parameters (base + ``KEDRO_ENV`` or local), read when a pipeline is built.

    Runtime ``--params`` are not seen here: they can change a model's settings, not which
    models (namespaces) the pipeline holds.
    """
    conf_source = Path(conf_source or Path.cwd() / settings.CONF_SOURCE)
    loader_args = {**settings.CONFIG_LOADER_ARGS, "default_run_env": env or os.environ.get("KEDRO_ENV", "local")}
    return OmegaConfigLoader(conf_source=str(conf_source), **loader_args)["parameters"]


def named(func, **kwargs):
    """``func`` with keyword arguments bound, keeping its name and docstring for Kedro-Viz."""
    return update_wrapper(partial(func, **kwargs), func)
