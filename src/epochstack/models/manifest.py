"""The stacking manifest: what a trained stack expects, checked before any prediction."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform

import pandas as pd

from epochstack.errors import InputDataError

LIBRARIES = ("epochstack", "numpy", "pandas", "scikit-learn", "imbalanced-learn", "optuna", "lightgbm", "torch", "kedro", "mlflow")


def folds_hash(folds: pd.DataFrame) -> str:
    """sha256 of the ``epoch_id,fold`` table sorted by epoch id."""
    table = folds[["epoch_id", "fold"]].astype({"epoch_id": str, "fold": int}).sort_values("epoch_id")
    text = "\n".join(f"{e},{f}" for e, f in table.itertuples(index=False))
    return hashlib.sha256(text.encode()).hexdigest()


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
    classes: list[str],
    base_model_order: list[str],
    features_per_model: dict[str, list[str]],
    folds: pd.DataFrame,
    parameters: dict,
    best_params: dict,
) -> dict:
    """Everything inference checks, plus what a reader needs to reproduce the stack."""
    return {
        "classes": list(classes),
        "base_model_order": list(base_model_order),
        "features_per_model": {name: list(cols) for name, cols in features_per_model.items()},
        "folds_hash": folds_hash(folds),
        "n_cv_epochs": int((folds["fold"] >= 0).sum()),
        "n_test_epochs": int((folds["fold"] < 0).sum()),
        "parameters": parameters,
        "best_params": best_params,
        "library_versions": library_versions(),
    }


def check_against_manifest(manifest: dict, feature_columns, classes: list[str], base_model_order: list[str]) -> None:
    """Raise a one-line error when features, classes or base models differ from the manifest."""
    if list(classes) != list(manifest["classes"]):
        raise InputDataError(
            "stacking_manifest", f"the model predicts classes {list(classes)}, the manifest says {manifest['classes']}.",
            "use the stacking_model and stacking_manifest of the same training run.",
        )
    if list(base_model_order) != list(manifest["base_model_order"]):
        raise InputDataError(
            "stacking_manifest", f"base models {list(base_model_order)} differ from the manifest's {manifest['base_model_order']}.",
            "use the stacking_model and stacking_manifest of the same training run.",
        )
    available = set(feature_columns)
    missing = sorted({c for cols in manifest["features_per_model"].values() for c in cols} - available)
    if missing:
        raise InputDataError(
            "features", f"{len(missing)} feature columns named in the stacking manifest are missing, e.g. {missing[:5]}.",
            "compute features with the feature parameters used for training, or retrain the stack.",
        )
