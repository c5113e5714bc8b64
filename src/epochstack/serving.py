"""The trained stack as an MLflow Model: samples of a new recording in, one labelled row per epoch out.

:class:`EpochStackModel` is an ``mlflow.pyfunc.PythonModel`` holding the stacking model (every
base model it reads, deep networks included) and the stacking manifest. ``predict`` takes the
CSV input format as a table (``time``, one column per training channel, ``recording_id``,
``subject_id``; several recordings may share it) and runs the inference pipeline's own code
(:func:`epochstack.inference.label_recordings`): the training preprocessing and epoching, the
training features, the base models, the stack. It returns ``epoch_id, recording_id, t_start_s,
label, proba_<class>...``. A model trained on trials (UEA ``.ts``, HDF5 epochs) reads trials:
one recording id per trial, of the training trial length.

:func:`log_serving_model` logs it with a signature, an input example made of the training
epochs (two epochs of a training recording, or two training trials) and pinned requirements
(``epochstack==<version>`` and its dependencies at their installed versions), registers it,
and logs each deep network of the stack through MLflow's ONNX flavour (weights only).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import re
import tempfile
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

import epochstack
from epochstack.inference import OUTPUT_COLUMNS, label_recordings, reads_trials
from epochstack.models.labels import proba_columns
from epochstack.recordings import read_recordings
from epochstack.signals.epoch_store import EpochStore
from epochstack.tracking import task_name

logger = logging.getLogger(__name__)

TIME, RECORDING, SUBJECT = "time", "recording_id", "subject_id"
MODEL_NAME = "model"  # the MLflow Model's name inside its run
STACKING_MODEL, MANIFEST = "stacking_model", "stacking_manifest"


def samples_dataset(signals_path: str | Path) -> dict:
    """The ``inference.dataset`` parameters that read a samples table written as CSV."""
    return {
        "format": "csv",
        "channels": None,
        "sfreq": None,
        "csv": {
            "signals_path": str(signals_path),
            "events_path": None,
            "time_column": TIME,
            "recording_column": RECORDING,
            "subject_column": SUBJECT,
            "label_column": None,
            "channel_types": None,
        },
    }


def label_samples(
    samples: pd.DataFrame, stacking_model, stacking_manifest: dict, n_workers: int = 1
) -> pd.DataFrame:
    """Labels and probabilities per epoch of the recordings in a samples table (the CSV format)."""
    with tempfile.TemporaryDirectory(prefix="epochstack-serving-") as folder:
        path = Path(folder) / "samples.csv"
        samples.to_csv(path, index=False)  # the CSV reader's checks apply to served input too
        dataset = samples_dataset(path)
        executor = {"backend": "local", "address": None, "n_workers": int(n_workers)}
        return label_recordings(
            read_recordings(dataset), dataset, stacking_model, stacking_manifest, executor
        )


class EpochStackModel(mlflow.pyfunc.PythonModel):
    """The stack and its manifest; ``predict`` labels every epoch of the given recordings."""

    def load_context(self, context) -> None:
        self.stacking_model = joblib.load(context.artifacts[STACKING_MODEL])
        self.manifest = json.loads(Path(context.artifacts[MANIFEST]).read_text())

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        return label_samples(
            pd.DataFrame(model_input),
            self.stacking_model,
            self.manifest,
            (params or {}).get("n_workers", 1),
        )


def model_signature(channel_names: list[str], classes: list[str]) -> ModelSignature:
    """Input: ``time``, the training channels (floats), ``recording_id``, ``subject_id``; output:
    one row per epoch; parameter ``n_workers`` (recordings epoched in parallel)."""
    inputs = Schema(
        [
            ColSpec("double", TIME),
            *[ColSpec("double", c) for c in channel_names],
            ColSpec("string", RECORDING),
            ColSpec("string", SUBJECT),
        ]
    )
    types = {
        "epoch_id": "string",
        "recording_id": "string",
        "t_start_s": "double",
        "label": "string",
    }
    outputs = Schema(
        [ColSpec(types[c], c) for c in OUTPUT_COLUMNS]
        + [ColSpec("double", c) for c in proba_columns(classes)]
    )
    return ModelSignature(inputs, outputs, ParamSchema([ParamSpec("n_workers", "long", 1)]))


def input_example(store: EpochStore, trials: bool = False, n_epochs: int = 2) -> pd.DataFrame:
    """A short input in the input format, from the training epochs: the first ``n_epochs``
    epochs of the first training recording as one recording, or (``trials``) the first epoch
    of each of the first ``n_epochs`` training recordings, one recording id per trial."""
    if trials:
        parts = [
            (f"example-trial-{i + 1}", np.asarray(store[recording][0], dtype=np.float64))
            for i, recording in enumerate(store.recording_ids[:n_epochs])
        ]
    else:
        epochs = np.asarray(store[store.recording_ids[0]][:n_epochs], dtype=np.float64)
        parts = [("example-recording", np.concatenate(list(epochs), axis=-1))]
    frames = []
    for recording, signals in parts:
        frame = pd.DataFrame(signals.T, columns=store.channel_names)
        frame.insert(0, TIME, np.arange(signals.shape[1]) / store.sfreq)
        frame[RECORDING], frame[SUBJECT] = recording, "example-subject"
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def pinned_requirements() -> list[str]:
    """``epochstack==<version>`` and every dependency it declares, at its installed version."""
    pins = [f"epochstack=={epochstack.__version__}"]
    for requirement in importlib.metadata.requires("epochstack") or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(requirement.split(";")[0].strip())
    return pins


def registered_name(serving: dict, dataset: dict) -> str:
    """``serving.registered_model_name``, else ``epochstack-<task>``."""
    return serving.get("registered_model_name") or f"epochstack-{task_name(dataset)}"


def _log_deep_networks(stacking_model, folder: Path) -> list[str]:
    """Each deep base model of the stack through MLflow's ONNX flavour: weights, no optimiser state."""
    import onnx

    from epochstack.models.deep.export import export_onnx

    logged = []
    for name, model in stacking_model.base_models.items():
        if not hasattr(model, "metadata_"):
            continue
        metadata = model.metadata_
        path = export_onnx(
            model.network,
            folder / f"{name}.onnx",
            len(metadata["channel_names"]),
            int(metadata["n_times"]),
        )
        mlflow.onnx.log_model(
            onnx.load(str(path)),
            name=f"deep-{name}",
            save_as_external_data=False,
            metadata={"epochstack": metadata},
            pip_requirements=[
                f"onnxruntime=={importlib.metadata.version('onnxruntime')}",
                f"onnx=={onnx.__version__}",
            ],
        )
        logged.append(name)
    return logged


def log_serving_model(
    stacking_model, stacking_manifest: dict, epoch_signals: EpochStore, dataset: dict, serving: dict
) -> dict | None:
    """Log the stack as an MLflow Model in the active run and register it; returns what was
    logged (registered name, version, model URI), or None when there is no run or it is off."""
    if not serving.get("log_model", True) or mlflow.active_run() is None:
        logger.info(
            "No MLflow Model logged (%s).",
            "inference.serving.log_model is false"
            if mlflow.active_run()
            else "no active MLflow run",
        )
        return None
    name = registered_name(serving, dataset)
    with tempfile.TemporaryDirectory(prefix="epochstack-model-") as folder:
        folder = Path(folder)
        joblib.dump(stacking_model, folder / "stacking_model.pkl")
        (folder / "manifest.json").write_text(json.dumps(stacking_manifest, indent=1))
        deep = _log_deep_networks(stacking_model, folder)
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=str(Path(__file__).with_name("pyfunc_model.py")),
            artifacts={
                STACKING_MODEL: str(folder / "stacking_model.pkl"),
                MANIFEST: str(folder / "manifest.json"),
            },
            signature=model_signature(epoch_signals.channel_names, stacking_manifest["classes"]),
            input_example=input_example(epoch_signals, reads_trials(stacking_manifest)),
            pip_requirements=pinned_requirements(),
            registered_model_name=name,
            metadata={
                "classes": stacking_manifest["classes"],
                "base_models": stacking_manifest["base_model_order"],
                "required_models": stacking_manifest["required_models"],
                "deep_networks_onnx": deep,
            },
        )
    logger.info(
        "Logged the stack as MLflow Model %s, registered as %s version %s.",
        info.model_uri,
        name,
        info.registered_model_version,
    )
    return {
        "registered_model_name": name,
        "version": info.registered_model_version,
        "model_uri": info.model_uri,
    }
