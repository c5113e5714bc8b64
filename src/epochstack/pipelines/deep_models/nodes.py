"""Nodes of the deep_models pipeline: thin calls into ``epochstack.models.deep``.

Every enabled network (``deep_models.enabled``, read when the node runs) lives the life of any
base model (:func:`epochstack.models.fitting.fit_base_model`): tuning per ``evaluation.protocol``
(Optuna, off by default), one model per CV fold for the out-of-fold probabilities, a final model
on all CV folds for the test probabilities; the final weights are exported (``model.pt``,
``model.onnx``, ``model.json`` under ``deep_models.model_dir/<name>/``).
"""

from __future__ import annotations

import copy
import logging
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.execution import Executor
from epochstack.models.deep.export import save_model
from epochstack.models.deep.model import DeepModel
from epochstack.models.deep.training import DeepModelConfig, training_settings
from epochstack.models.engine import scores
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


def _search(network: dict, deep_models: dict) -> dict:
    """The network's search space with the shared Optuna settings (trials, timeout, pruner)."""
    optuna_settings = deep_models.get("optuna") or {}
    return {**optuna_settings, "space": network.get("search") or {}}


def train_deep_models(
    epoch_signals: EpochStore,
    epoch_table: pd.DataFrame,
    folds: pd.DataFrame,
    deep_models: dict,
    protocol: str,
    optuna_storage: str,
    device: str,
    executor: dict,
) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict, dict]:
    """Out-of-fold and test probabilities of every enabled network, the final fitted networks
    by name, a report per network (scores, folds, passes, tuned parameters) and the per-fold
    seconds of each network (for MLflow: timings stay out of the versioned reports)."""
    names = enabled_models(deep_models, "deep_models", "networks")
    data, cv_rows, test_rows = model_data(epoch_table, folds, signals=epoch_signals)
    protocol = resolve_protocol(protocol, deep_models)
    oof_frames, test_frames, fitted, reports, timings = [], [], {}, {}, {}
    model_dir = Path(deep_models.get("model_dir", "data/06_models"))
    for name in names:
        network = deep_models["networks"][name]
        search = _search(network, deep_models)
        build = partial(
            _build,
            network,
            deep_models,
            name,
            data.classes,
            device,
            (model_dir / name / "checkpoints").resolve(),
        )
        result = fit_base_model(
            name,
            build,
            data,
            cv_rows,
            test_rows,
            search=search,
            protocol=protocol,
            storage=optuna_storage,
            seed=int(deep_models.get("seed", 0)),
            key={
                "network": network,
                "data": deep_models.get("data"),
                "training": deep_models.get("training"),
                "preset": deep_models.get("preset"),
            },
            executor=Executor.from_params(executor),
        )
        oof, test = result.frames(data, cv_rows, test_rows)
        oof_frames.append(oof)
        test_frames.append(test)
        final = getattr(
            result.final, "model_", result.final
        )  # a tuned model holds the network it chose
        fitted[name] = final
        save_model(
            model_dir / name, final.network, {**final.metadata_, "config": final.config.to_dict()}
        )
        reports[name] = result.report(data, cv_rows)
        timings[name] = result.timings()
        _log_model_runs(name, reports[name], model_dir / name)
        for study in result.studies:
            log_study_to_mlflow(optuna_storage, study, f"deep-{name}")
    if not names:
        logger.info(
            "deep_models.enabled is empty: no network trained; the stack uses the other base models."
        )
        return (
            pd.DataFrame(columns=PREDICTION_COLUMNS),
            pd.DataFrame(columns=PREDICTION_COLUMNS),
            {},
            {},
            {},
        )
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
            if run_name.endswith("-final"):
                for path in sorted(
                    model_dir.glob("model.*")
                ):  # weights, ONNX, metadata; no checkpoints
                    mlflow.log_artifact(str(path), artifact_path=name)


def plot_training_curves(deep_models_report: dict) -> dict[str, plt.Figure]:
    """Per network: training and validation loss and score per pass, one line per fold model and the final model."""
    figures = {}
    for name, report in deep_models_report.items():
        runs = [
            (f"fold {f['fold']}", f.get("model", {}).get("history", [])) for f in report["folds"]
        ] + [("final", report["final"].get("history", []))]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for i, (label, history) in enumerate(runs):
            passes = [h["pass_index"] for h in history]
            axes[0].plot(
                passes, [h["train_loss"] for h in history], color=f"C{i}", label=f"{label} train"
            )
            axes[0].plot(
                passes,
                [h["val_loss"] for h in history],
                color=f"C{i}",
                linestyle="--",
                label=f"{label} validation",
            )
            axes[1].plot(passes, [h["train_score"] for h in history], color=f"C{i}")
            axes[1].plot(passes, [h["val_score"] for h in history], color=f"C{i}", linestyle="--")
        axes[0].set(xlabel="pass", ylabel="loss", title=f"{name}: loss")
        axes[1].set(
            xlabel="pass",
            ylabel="validation score",
            title=f"{name}: score (dashed: validation subjects)",
        )
        axes[0].legend(fontsize=7, ncol=2)
        fig.tight_layout()
        figures[f"{name}_training_curves.png"] = fig
    if not figures:  # the artifact folder still says why it is empty
        fig, ax = plt.subplots(figsize=(5, 1))
        ax.text(
            0.5, 0.5, "deep_models.enabled is empty: no network trained", ha="center", va="center"
        )
        ax.axis("off")
        figures["no_network_trained.png"] = fig
    return figures


def score_deep_models(
    deep_oof: pd.DataFrame, epoch_table: pd.DataFrame, deep_model_timings: dict
) -> tuple[dict, dict]:
    """OOF macro F1 / kappa per network (a JSON table, DVC metrics: scores only, so that a rerun
    with the same results compares equal) and MLflow metrics: the scores and per-fold fit seconds."""
    labels = epoch_table.astype({"epoch_id": str}).set_index("epoch_id")["label"]
    table, metrics = {}, {}
    for model, rows in deep_oof.groupby("model", sort=True):
        model_scores = scores(
            labels.loc[rows["epoch_id"].astype(str)].astype(str).to_numpy(dtype=object),
            rows["pred"].to_numpy(dtype=object),
        )
        table[str(model)] = model_scores
        metrics |= {
            f"{model}.oof_{name}": {"value": value, "step": 0}
            for name, value in model_scores.items()
        }
        metrics[f"{model}.fold_fit_seconds"] = [
            {"value": float(value), "step": i}
            for i, value in enumerate(deep_model_timings[model]["fold_fit_seconds"])
        ]
    return table, metrics
