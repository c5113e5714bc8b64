"""The code MLflow runs to build the served stack (MLflow's "models from code").

:func:`epochstack.serving.log_serving_model` logs this file instead of a pickled Python object, so
the registry holds no cloudpickle of code, only this file, the model's artifacts (the stacking
model, the manifest) and its pinned requirements; loading it imports the installed epochstack.
"""

from mlflow.models import set_model

from epochstack.serving import EpochStackModel

set_model(EpochStackModel())
