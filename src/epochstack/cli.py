"""Project commands: Kedro's own ``kedro run``, with bad input reported on one line.

A run that stops on :class:`~epochstack.errors.InputDataError` (bad data or parameters, raised
anywhere: a node, a joblib worker, a Dask task, parameter validation) ends with exit status 1
and one line naming the file or parameter, the problem and the fix, without a traceback.
Genuine bugs keep their traceback. Either way the MLflow run of the failed ``kedro run`` is
marked FAILED, never left RUNNING.
"""

from __future__ import annotations

import logging
import sys

import click
from kedro.framework.cli.project import run as kedro_run

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


def _run(**kwargs):
    try:
        return kedro_run.callback(**kwargs)
    except Exception as error:  # noqa: BLE001 - bad input is reported, anything else re-raised
        _end_mlflow_run_as_failed()
        bad_input = _input_error(error)
        if bad_input is None:
            raise
        logging.shutdown()
        click.echo(click.style(f"{type(bad_input).__name__}: {bad_input}", fg="red"), err=True)
        sys.exit(1)


@click.group(name="epochstack")
def cli():
    """Commands of the epochstack project."""


cli.add_command(
    click.Command("run", params=list(kedro_run.params), callback=_run, help=kedro_run.help)
)
