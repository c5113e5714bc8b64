"""Project settings: hooks and configuration loader (see Kedro's configuration docs)."""

from omegaconf.resolvers import oc

from epochstack.hooks import ParameterValidationHook, RunTagsHook, StagedOutputsHook

HOOKS = (ParameterValidationHook(), RunTagsHook(), StagedOutputsHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # ${oc.env:VAR,default} lets mlflow.yml take MLFLOW_TRACKING_URI from the environment.
    "custom_resolvers": {"oc.env": oc.env},
    # Environments (conf/<env>/) override only the keys they name.
    "merge_strategy": {"parameters": "soft"},
}
