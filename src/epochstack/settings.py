"""Project settings: hooks and configuration loader (see Kedro's configuration docs)."""

import logging

from omegaconf.resolvers import oc


class _WithoutMessage(logging.Filter):
    """Drops the log records whose message contains ``text``."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


# kedro-mlflow defines a PythonModel (KedroPipelineModel, which epochstack does not use) without
# type hints; MLflow warns about it (through Kedro's warning log) whenever kedro-mlflow loads,
# which is on every kedro command, and forces the warning past warning filters. epochstack's own
# served model has its hints.
logging.getLogger("py.warnings").addFilter(
    _WithoutMessage("Add type hints to the `predict` method")
)

from epochstack.hooks import (  # noqa: E402
    DvcExperimentHook,
    DvcRecordHook,
    ParameterValidationHook,
    RunInputHook,
    RunNameHook,
    RunTagsHook,
    StagedOutputsHook,
)
from epochstack.tracking import project_artifact_location, project_sqlite_url  # noqa: E402

HOOKS = (
    ParameterValidationHook(),
    DvcExperimentHook(),
    RunNameHook(),
    RunTagsHook(),
    RunInputHook(),
    StagedOutputsHook(),
    DvcRecordHook(),
)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {
        # ${oc.env:VAR,default} lets mlflow.yml take MLFLOW_TRACKING_URI from the environment.
        "oc.env": oc.env,
        # The project's SQLite files and artifact folder, also from a DVC experiment copy.
        "project_sqlite": project_sqlite_url,
        "project_artifacts": project_artifact_location,
    },
    # Environments (conf/<env>/) override only the keys they name.
    "merge_strategy": {"parameters": "soft"},
}
