"""The stacking manifest: what a trained stack expects, checked before any prediction.

It records the classes, the base models (and what each reads), the folds the OOF predictions
were made on, and the dataset, preprocessing and feature parameters of training: inference
recomputes epochs and features with those, never with whatever the current parameters say.
"""

from __future__ import annotations

import importlib.metadata
import platform

import pandas as pd

from epochstack.errors import InputDataError
from epochstack.models.splits import folds_hash

LIBRARIES = (
    "epochstack",
    "numpy",
    "pandas",
    "scikit-learn",
    "imbalanced-learn",
    "optuna",
    "lightgbm",
    "torch",
    "aeon",
    "pyriemann",
    "kedro",
    "mlflow",
)


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries that shape a trained model."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def build_manifest(
    stacking_model,
    folds: pd.DataFrame,
    *,
    training: dict,
    stacking: dict,
    selected: str,
    protocol: str,
    epochs: dict | None = None,
) -> dict:
    """Everything inference checks, plus what a reader needs to reproduce the stack.

    ``epochs`` describes what the model reads (:func:`epoch_shape` of the training epochs).
    """
    return {
        "classes": list(stacking_model.classes),
        "base_model_order": stacking_model.base_model_order,
        "required_models": stacking_model.required_models,
        "reads": dict(stacking_model.reads),
        "features_per_model": {
            name: list(m.columns)
            for name, m in stacking_model.base_models.items()
            if hasattr(m, "columns")
        },
        "stack_selected": selected,
        "protocol": protocol,
        "folds_hash": folds_hash(folds),
        "n_cv_epochs": int((folds["fold"] >= 0).sum()),
        "n_test_epochs": int((folds["fold"] < 0).sum()),
        "training": training,
        "epochs": epochs,
        "parameters": stacking,
        "library_versions": library_versions(),
    }


def epoch_shape(store) -> dict:
    """Channels, types, rate (and whether the source gave it) and samples of the epochs in ``store``."""
    return {
        "channel_names": list(store.channel_names),
        "channel_types": list(store.channel_types),
        "sfreq": float(store.sfreq),
        "sfreq_known": bool(store.sfreq_known),
        "n_times": int(store.n_times),
    }


def check_against_manifest(manifest: dict, stacking_model, feature_columns) -> None:
    """Raise a one-line error when the model, the classes or the features differ from the manifest."""
    same_run = "use the stacking_model and stacking_manifest of the same training run."
    if list(stacking_model.classes) != list(manifest["classes"]):
        raise InputDataError(
            "stacking_manifest",
            f"the model predicts classes {list(stacking_model.classes)}, the manifest says {manifest['classes']}.",
            same_run,
        )
    if list(stacking_model.base_model_order) != list(manifest["base_model_order"]):
        raise InputDataError(
            "stacking_manifest",
            f"base models {stacking_model.base_model_order} differ from the manifest's {manifest['base_model_order']}.",
            same_run,
        )
    needed = {
        c
        for m, cols in manifest["features_per_model"].items()
        if m in stacking_model.required_models
        for c in cols
    }
    missing = sorted(needed - set(feature_columns))
    if missing:
        raise InputDataError(
            "features",
            f"{len(missing)} feature columns named in the stacking manifest are missing, e.g. {missing[:5]}.",
            "compute features with the feature parameters of training (the manifest's training.features).",
        )
