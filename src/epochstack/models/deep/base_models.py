"""Every enabled network of the ``deep_models`` parameters as a base model of the stack.

Each network lives the life of any base model (:func:`epochstack.models.fitting.fit_base_model`):
tuning per ``evaluation.protocol`` (Optuna, off by default), one model per CV fold for the
out-of-fold probabilities, a final model on all CV folds for the test probabilities; the final
weights are exported (``model.pt``, ``model.onnx``, ``model.json`` under
``deep_models.model_dir/<name>/``) and each fold and final model gets a nested MLflow run.
"""

from __future__ import annotations

import copy
import logging
from functools import partial
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.execution import Executor
from epochstack.models.deep.export import save_model
from epochstack.models.deep.model import DeepModel
from epochstack.models.deep.training import DeepModelConfig, training_settings
from epochstack.models.fitting import fit_base_model, model_data, resolve_protocol
from epochstack.models.registry import enabled_models
from epochstack.models.tuning import log_study_to_mlflow
from epochstack.signals.epoch_store import EpochStore

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = ["epoch_id", "fold", "model", "pred"]


def merge_settings(base: dict, extra: dict | None) -> dict:
    """``base`` updated recursively with ``extra`` (dicts merge, everything else replaces)."""
    merged = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        merged[key] = (
            merge_settings(merged[key], value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else copy.deepcopy(value)
        )
    return merged


def _set_dotted(config: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    node = config
    for part in path:
        node = node.setdefault(part, {})
    node[last] = value


def model_config(
    network: dict, deep_models: dict, tuned: dict | None = None, *, model_name: str
) -> DeepModelConfig:
    """One network's settings: shared training defaults < the network's own < the preset < tuned values."""
    if "architecture" not in (network or {}):
        raise InputDataError(
            f"deep_models.networks.{model_name}",
            "has no architecture.",
            "set architecture: cnn | cnn_bilstm | lstm.",
        )
    spec = merge_settings({"training": deep_models.get("training") or {}}, network)
    preset = deep_models.get("preset")
    if preset:
        presets = deep_models.get("presets") or {}
        if preset not in presets:
            raise InputDataError(
                "deep_models.preset",
                f"{preset!r} is not defined.",
                f"use one of {sorted(presets)} or null.",
            )
        spec = merge_settings(spec, presets[preset])
    for dotted, value in (tuned or {}).items():
        _set_dotted(spec, dotted, value)
    data = deep_models.get("data") or {}
    try:
        training = training_settings(spec.get("training"))
    except ValueError as error:
        raise InputDataError(
            f"deep_models.networks.{model_name}.training", str(error), "fix the training settings."
        ) from error
    return DeepModelConfig(
        name=model_name,
        architecture=spec["architecture"],
        network=spec.get("network") or {},
        training=training,
        channels=spec.get("channels"),
        normalisation=data.get("normalisation", "auto"),
        clip=data.get("clip", 20.0),
        validation_fraction=float(data.get("validation_fraction", 0.2)),
        min_validation_subjects=int(data.get("min_validation_subjects", 2)),
        seed=int(deep_models.get("seed", 0)),
    )


def _build(
    network: dict,
    deep_models: dict,
    name: str,
    classes: list[str],
    device: str,
    checkpoint_root: Path,
    tuned: dict,
) -> DeepModel:
    config = model_config(network, deep_models, tuned, model_name=name)
    return DeepModel(
        config,
        classes,
        device=device,
        checkpoint_root=checkpoint_root,
        torch_threads=deep_models.get("torch_threads"),
    )


def fit_networks(
    epoch_signals: EpochStore,
    epoch_table: pd.DataFrame,
    folds: pd.DataFrame,
    deep_models: dict,
    *,
    protocol: str,
    storage: str,
    device: str,
    executor: Executor,
) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict, dict]:
    """Out-of-fold and test probabilities of every enabled network, the final fitted networks
    by name, a report per network (scores, folds, passes, tuned parameters) and the per-fold
    seconds of each network (timings stay out of the versioned reports)."""
    names = enabled_models(deep_models, "deep_models", "networks")
    data, cv_rows, test_rows = model_data(epoch_table, folds, signals=epoch_signals)
    protocol = resolve_protocol(protocol, deep_models)
    oof_frames, test_frames, fitted, reports, timings = [], [], {}, {}, {}
    model_dir = Path(deep_models.get("model_dir", "data/06_models"))
    for name in names:
        network = deep_models["networks"][name]
        checkpoints = (model_dir / name / "checkpoints").resolve()
        result = fit_base_model(
            name,
            partial(_build, network, deep_models, name, data.classes, device, checkpoints),
            data,
            cv_rows,
            test_rows,
            # the network's search space with the shared Optuna settings (trials, timeout, pruner)
            search={**(deep_models.get("optuna") or {}), "space": network.get("search") or {}},
            protocol=protocol,
            storage=storage,
            seed=int(deep_models.get("seed", 0)),
            key={
                "network": network,
                "data": deep_models.get("data"),
                "training": deep_models.get("training"),
                "preset": deep_models.get("preset"),
            },
            executor=executor,
        )
        oof, test = result.frames(data, cv_rows, test_rows)
        oof_frames.append(oof)
        test_frames.append(test)
        final = getattr(result.final, "model_", result.final)  # a tuned model holds its pick
        fitted[name] = final
        save_model(
            model_dir / name, final.network, {**final.metadata_, "config": final.config.to_dict()}
        )
        reports[name] = result.report(data, cv_rows)
        timings[name] = result.timings()
        _log_model_runs(name, reports[name], model_dir / name)
        for study in result.studies:
            log_study_to_mlflow(storage, study, f"deep-{name}")
    if not names:
        logger.info(
            "deep_models.enabled is empty: no network trained; the stack uses the other base models."
        )
        no_rows = pd.DataFrame(columns=PREDICTION_COLUMNS)
        return no_rows, no_rows.copy(), {}, {}, {}
    return (
        pd.concat(oof_frames, ignore_index=True),
        pd.concat(test_frames, ignore_index=True),
        fitted,
        reports,
        timings,
    )


def _log_model_runs(name: str, report: dict, model_dir: Path) -> None:
    """Nested MLflow runs: one per fold model and one for the final model, with pass histories."""
    if mlflow.active_run() is None:
        return
    runs = [(f"{name}-fold-{f['fold']}", f.get("model", {})) for f in report["folds"]] + [
        (f"{name}-final", report["final"])
    ]
    for run_name, model in runs:
        with mlflow.start_run(run_name=run_name, nested=True):
            for record in model.get("history", []):
                values = {
                    k: record[k]
                    for k in ("train_loss", "train_score", "val_loss", "val_score", "learning_rate")
                    if np.isfinite(record[k])
                }
                mlflow.log_metrics(values, step=record["pass_index"])
            if "best_score" in model:
                mlflow.log_metrics(
                    {"best_pass": model["best_pass"], "best_val_score": model["best_score"]}
                )
            if run_name.endswith("-final"):  # weights, ONNX, metadata; no checkpoints
                for path in sorted(model_dir.glob("model.*")):
                    mlflow.log_artifact(str(path), artifact_path=name)
