"""The REST service (``kedro serve``): recordings in, per-epoch labels and probabilities out.

A library module: it knows nothing of Kedro. ``epochstack.cli`` reads the project's settings
(tracking store, reader settings) and starts :func:`create_app` with uvicorn; docs/inference.md.
"""

from epochstack.service.app import ServiceSettings, create_app
from epochstack.service.model import ServedModel, load_served_model, resolve_model_uri

__all__ = [
    "ServedModel",
    "ServiceSettings",
    "create_app",
    "load_served_model",
    "resolve_model_uri",
]
