"""The registered model the service labels with, read from an MLflow registry, and its card.

The service loads the MLflow Model a training run registered (:mod:`epochstack.serving`) and
labels with the stacking model and manifest inside it, through the same
:func:`epochstack.inference.label_recordings` as the pipeline and the pyfunc. Its card says what
the model reads and how well it did on its held-out test set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import mlflow
import pandas as pd
from mlflow import MlflowClient

from epochstack.errors import InputDataError
from epochstack.inference import model_input, reads_trials

MODEL_URI = re.compile(r"^models:/(?P<name>[^/]+)/(?P<version>\d+)$")
NOT_CHANNELS = ("time", "recording_id", "subject_id")


@dataclass
class ServedModel:
    """A registered model loaded for serving: what labels (stack, manifest) and what it says."""

    name: str
    version: str
    stacking_model: object
    manifest: dict
    card: dict
    input_example: pd.DataFrame | None = field(default=None, repr=False)


def resolve_model_uri(model: str | None, registry_uri: str) -> str:
    """``models:/<name>/<version>`` as given (checked), or the latest version registered in the
    store (the most recently created one, whatever its name)."""
    client = MlflowClient(registry_uri, registry_uri)
    if model:
        match = MODEL_URI.match(model)
        if match is None:
            raise InputDataError(
                "--model",
                f"{model!r} is not a registered model version.",
                "give models:/<name>/<version>, e.g. models:/epochstack-sleep/1.",
            )
        name, version = match["name"], match["version"]
        found = client.search_model_versions(f"name='{name}'")
        if not any(str(v.version) == version for v in found):
            have = sorted(int(v.version) for v in found)
            raise InputDataError(
                "--model",
                f"{model} is not in the registry at {registry_uri} (versions of {name}: {have}).",
                "pick one of those versions, or train: kedro run.",
            )
        return model
    versions = [
        v
        for m in client.search_registered_models()
        for v in client.search_model_versions(f"name='{m.name}'")
    ]
    if not versions:
        raise InputDataError(
            registry_uri,
            "holds no registered model.",
            "train one first (kedro run), or point MLFLOW_TRACKING_URI at the store that has it.",
        )
    latest = max(versions, key=lambda v: int(v.creation_timestamp))
    return f"models:/{latest.name}/{latest.version}"


def load_served_model(model_uri: str, registry_uri: str) -> ServedModel:
    """Load a registered model version (``models:/<name>/<version>``) with its input example
    and card."""
    match = MODEL_URI.match(model_uri)
    if match is None:
        raise InputDataError("--model", f"{model_uri!r} is not models:/<name>/<version>.")
    client = MlflowClient(registry_uri, registry_uri)  # no process-wide MLflow settings
    version = client.get_model_version(match["name"], match["version"])
    location = client.get_model_version_download_uri(match["name"], match["version"])
    pyfunc = mlflow.pyfunc.load_model(
        mlflow.artifacts.download_artifacts(artifact_uri=location, tracking_uri=registry_uri)
    )
    wrapped = pyfunc.unwrap_python_model()
    card = model_card(
        match["name"],
        match["version"],
        wrapped.manifest,
        [c for c in pyfunc.metadata.get_input_schema().input_names() if c not in NOT_CHANNELS],
        client.get_run(version.run_id) if version.run_id else None,
        version.creation_timestamp,
    )
    return ServedModel(
        match["name"],
        match["version"],
        wrapped.stacking_model,
        wrapped.manifest,
        card,
        pyfunc.input_example,
    )


def model_card(
    name: str, version: str, manifest: dict, channels: list[str], run, created_ms: int | None
) -> dict:
    """Name, version, what the model reads (channels, rate, epoch length), its classes and
    models, and the training run with its held-out test metrics."""
    reads = model_input(manifest) or {"channel_names": channels}
    metrics = run.data.metrics if run is not None else {}
    return {
        "name": name,
        "version": str(version),
        "model_uri": f"models:/{name}/{version}",
        "registered_at": (
            datetime.fromtimestamp(created_ms / 1000, timezone.utc).isoformat()
            if created_ms
            else None
        ),
        "classes": list(manifest["classes"]),
        "input": {
            "reads": "trials" if reads_trials(manifest) else "recordings",
            "channels": list(reads["channel_names"]),
            "channel_types": reads.get("channel_types"),
            "sampling_rate_hz": reads.get("sfreq") if reads.get("sfreq_known", True) else None,
            "epoch_length_s": reads.get("epoch_s") if reads.get("sfreq_known", True) else None,
            "samples_per_epoch": reads.get("n_times"),
        },
        "base_models": list(manifest["base_model_order"]),
        "stack": manifest.get("stack_selected"),
        "training_run": {
            "run_id": run.info.run_id if run is not None else None,
            "run_name": run.info.run_name if run is not None else None,
            "test_metrics": {k: v for k, v in sorted(metrics.items()) if k.startswith("test.")},
        },
    }
