"""Project settings: hooks and configuration loader (see Kedro's configuration docs)."""

import warnings

from omegaconf.resolvers import oc

# kedro-mlflow defines a PythonModel (KedroPipelineModel, which epochstack does not use) without
# type hints, and MLflow warns about that when kedro-mlflow loads, on every kedro command. This
# module is read before kedro-mlflow's commands. epochstack's own model has its hints.
warnings.filterwarnings(
    "ignore", message=r".*Add type hints to the `predict` method", category=UserWarning
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
