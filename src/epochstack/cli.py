"""Project commands: Kedro's own ``kedro run``, with bad input reported on one line and lists
accepted in ``--params``, and ``kedro serve``, the REST service on a registered model.

A run that stops on :class:`~epochstack.errors.InputDataError` (bad data or parameters, raised
anywhere: a node, a joblib worker, a Dask task, parameter validation) ends with exit status 1
and one line naming the file or parameter, the problem and the fix, without a traceback.
Genuine bugs keep their traceback. Either way the MLflow run of the failed ``kedro run`` is
marked FAILED, never left RUNNING.

``kedro serve`` reads the project's tracking store (``conf/<env>/mlflow.yml``) and reader
settings (``inference.dataset``) and starts :func:`epochstack.service.create_app` with uvicorn
(docs/inference.md).
"""

from __future__ import annotations

import copy
import logging
import re
import sys
from functools import partial
from pathlib import Path

import click
from kedro.framework.cli.project import run as kedro_run
from omegaconf import OmegaConf

from epochstack.errors import InputDataError


def _input_error(error: BaseException) -> InputDataError | None:
    """The InputDataError behind ``error`` (Kedro and joblib may wrap it), if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, InputDataError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _end_mlflow_run_as_failed() -> None:
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run("FAILED")


def _report_bad_input(bad_input: InputDataError) -> None:
    logging.shutdown()
    click.echo(click.style(f"{type(bad_input).__name__}: {bad_input}", fg="red"), err=True)
    sys.exit(1)


def _run(**kwargs):
    try:
        return kedro_run.callback(**kwargs)
    except Exception as error:  # noqa: BLE001 - bad input is reported, anything else re-raised
        _end_mlflow_run_as_failed()
        bad_input = _input_error(error)
        if bad_input is None:
            raise
        _report_bad_input(bad_input)


@click.group(name="epochstack")
def cli():
    """Commands of the epochstack project."""


# Kedro cuts --params at every comma, lists included (kedro-org/kedro#2552); this splitter
# cuts only at commas outside brackets and quotes, so "stacking.enabled=[logreg,quant],x=1"
# works as the docs say. Written here because Kedro offers no hook for its option parsing.
_TOP_LEVEL_COMMA = re.compile(r",(?=(?:[^\[\]{}\"']|\[[^\]]*\]|{[^}]*}|\"[^\"]*\"|'[^']*')*$)")


def split_params(ctx: click.Context | None, param: click.Parameter, value):
    """``--params`` as a nested dict: ``key=value`` items at top-level commas, OmegaConf values."""
    if isinstance(value, dict) or not value:
        return value or {}
    dot_list = []
    for item in filter(str.strip, _TOP_LEVEL_COMMA.split(value)):
        key, equals, val = item.partition("=")
        if not equals or not key.strip():
            raise click.BadParameter(
                f"item {item.strip()!r} must be key=value (a list: key=[a,b]).", ctx, param
            )
        dot_list.append(f"{key.strip()}={val}")
    return OmegaConf.to_container(OmegaConf.from_dotlist(dot_list))


def _run_options() -> list[click.Parameter]:
    options = []
    for option in kedro_run.params:
        if option.name == "params":
            option = copy.copy(option)
            option.callback = split_params
        options.append(option)
    return options


cli.add_command(click.Command("run", params=_run_options(), callback=_run, help=kedro_run.help))


def _project_settings(env: str | None) -> tuple[str, dict]:
    """The registry URI of the project's tracking store and the ``inference.dataset`` reader
    settings, as ``kedro run`` would see them in ``env``."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from epochstack.config import validate_parameters

    bootstrap_project(Path.cwd())
    with KedroSession.create(env=env) as session:
        context = session.load_context()
        server = context.mlflow.server
        readers = (context.params.get("inference") or {}).get("dataset") or {}
    validate_parameters({"inference": {"dataset": readers}})
    return server.mlflow_registry_uri or server.mlflow_tracking_uri, readers


@cli.command("serve")
@click.option(
    "--model",
    default=None,
    help="models:/<name>/<version>; default: the latest version registered in the project's tracking store.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--env", "-e", default=None, help="Kedro environment (its mlflow.yml and inference.dataset)."
)
@click.option(
    "--max-upload-mb", default=1024.0, show_default=True, type=float, help="Larger uploads get 413."
)
@click.option(
    "--max-concurrent",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Recordings labelled at once.",
)
@click.option(
    "--max-queue",
    default=16,
    show_default=True,
    type=click.IntRange(0),
    help="Uploads that may wait for a slot; more get 503.",
)
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="BLAS/OpenMP threads per recording being labelled.",
)
@click.option(
    "--root-path",
    default="",
    help="URL prefix when a reverse proxy serves the app under a path, e.g. /epochstack.",
)
def serve(model, host, port, env, max_upload_mb, max_concurrent, max_queue, threads, root_path):
    """Serve a registered model over HTTP: recordings in, labels out (docs/inference.md)."""
    import uvicorn

    from epochstack.service import (
        ServiceSettings,
        create_app,
        load_served_model,
        resolve_model_uri,
    )

    try:
        registry_uri, readers = _project_settings(env)
        model_uri = resolve_model_uri(model, registry_uri)
    except InputDataError as error:
        _report_bad_input(error)
    click.echo(f"Serving {model_uri} from {registry_uri} on http://{host}:{port} (docs: /docs).")
    settings = ServiceSettings(max_upload_mb, max_concurrent, max_queue, threads, readers=readers)
    app = create_app(partial(load_served_model, model_uri, registry_uri), settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        root_path=root_path,
        # connections beyond labelling and waiting uploads (and a few for /health) get 503
        limit_concurrency=max_concurrent + max_queue + 8,
        log_level="info",
    )
