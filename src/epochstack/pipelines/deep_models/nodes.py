"""Nodes of the deep_models pipeline: thin calls into ``epochstack.models.deep``.

Each network runs in its own namespace: tune (Optuna, off by default) -> one model per CV
fold (out-of-fold probabilities) -> a final model on all CV folds (test probabilities, ONNX).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import optuna
import pandas as pd
import torch

from epochstack.errors import InputDataError
from epochstack.models.deep.data import EpochReader, Normalisation, channel_indices
from epochstack.models.deep.export import model_metadata, save_model
from epochstack.models.deep.networks import build_network
from epochstack.models.deep.training import (
    DeepModelConfig,
    FoldResult,
    TrainingResult,
    fit_model,
    out_of_fold,
    predict_table,
    training_settings,
)
from epochstack.models.labels import class_list, proba_columns
from epochstack.models.oof import scores
from epochstack.models.tuning import log_trial_to_mlflow, open_study, run_study, suggest_params
from epochstack.signals.epoch_store import EpochStore

logger = logging.getLogger(__name__)

RERUN = "re-run `kedro run --pipelines data_engineering`."


# --- configuration ----------------------------------------------------------------------------


def _merge(base: dict, extra: dict | None) -> dict:
    merged = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else copy.deepcopy(value)
    return merged


def _set_dotted(config: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    node = config
    for part in path:
        node = node.setdefault(part, {})
    node[last] = value


def model_config(network: dict, deep_models: dict, best_params: dict | None = None, *, model_name: str) -> DeepModelConfig:
    """One network's settings: shared training defaults < the network's own < the preset < tuned values."""
    if "architecture" not in (network or {}):
        raise InputDataError(f"deep_models.networks.{model_name}", "has no architecture.", "set architecture: cnn | cnn_bilstm | lstm.")
    spec = _merge({"training": deep_models.get("training") or {}}, network)
    preset = deep_models.get("preset")
    if preset:
        presets = deep_models.get("presets") or {}
        if preset not in presets:
            raise InputDataError("deep_models.preset", f"{preset!r} is not defined.", f"use one of {sorted(presets)} or null.")
        spec = _merge(spec, presets[preset])
    for dotted, value in (best_params or {}).items():
        _set_dotted(spec, dotted, value)
    data = deep_models.get("data") or {}
    return DeepModelConfig(
        name=model_name, architecture=spec["architecture"], network=spec.get("network") or {},
        training=training_settings(spec.get("training")), channels=spec.get("channels"),
        normalisation=data.get("normalisation", "robust"), clip=data.get("clip", 20.0),
        validation_subjects=int(data.get("validation_subjects", 1)), seed=int(deep_models.get("seed", 0)),
    )


@contextlib.contextmanager
def torch_threads(n_threads: int | None):
    """Run with ``n_threads`` torch CPU threads (small convolutions often run best on one)."""
    previous = torch.get_num_threads()
    if n_threads:
        torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --- data ------------------------------------------------------------------------------------


def split_table(epoch_table: pd.DataFrame, folds: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CV epochs (labelled, ``fold >= 0``) and held-out test epochs (``fold -1``), each with its fold."""
    table = epoch_table.merge(folds[["epoch_id", "fold"]].astype({"fold": int}), on="epoch_id", how="inner", validate="one_to_one")
    missing = len(epoch_table) - len(table)
    if missing:
        logger.warning("%d epochs of epoch_table are in no fold and are not used.", missing)
    if len(table) < len(folds):
        raise InputDataError("folds", f"{len(folds) - len(table)} epoch ids are not in epoch_table.", RERUN)
    cv = table[table["fold"] >= 0].reset_index(drop=True)
    if cv["label"].isna().any():
        raise InputDataError("epoch_table", f"{int(cv['label'].isna().sum())} CV epochs have no label.", RERUN)
    return cv, table[table["fold"] < 0].reset_index(drop=True)


def _reader(store: EpochStore, config: DeepModelConfig) -> EpochReader:
    return EpochReader(store, channel_indices(store, config.channels), Normalisation(config.normalisation, config.clip))


def _builder(config: DeepModelConfig, reader: EpochReader, classes: list[str]):
    return lambda: build_network(config.architecture, config.network, len(reader.channels), len(classes))


def prediction_frame(epoch_ids, fold, model: str, proba: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """The predictions contract: ``epoch_id, fold, model, proba_<class>..., pred``."""
    frame = pd.DataFrame({"epoch_id": np.asarray(epoch_ids, dtype=object), "fold": np.asarray(fold, dtype=np.int64), "model": model})
    frame[proba_columns(classes)] = proba.reshape(len(frame), len(classes))
    frame["pred"] = np.asarray(classes, dtype=object)[proba.argmax(axis=1)] if len(proba) else []
    return frame.astype({"epoch_id": "string", "model": "string", "pred": "string"})


def _model_dir(deep_models: dict, name: str) -> Path:
    return Path(deep_models.get("model_dir", "data/06_models")) / name


# --- MLflow -----------------------------------------------------------------------------------


def _history_metrics(history) -> list[tuple[dict, int]]:
    return [
        ({"train_loss": r.train_loss, "train_score": r.train_score, "val_loss": r.val_loss, "val_score": r.val_score, "learning_rate": r.learning_rate}, r.epoch)
        for r in history
    ]


def _log_nested_run(run_name: str, config: DeepModelConfig, history, summary: dict, artifacts: Path | None) -> None:
    """A nested MLflow run (inside kedro-mlflow's) with per-pass metric history and artifacts."""
    if mlflow.active_run() is None:
        return
    with mlflow.start_run(run_name=run_name, nested=True):
        mlflow.log_params({"architecture": config.architecture, **{f"network.{k}": v for k, v in config.network.items()},
                           **{f"training.{k}": v for k, v in config.training.items()}})
        for metrics, step in _history_metrics(history):
            mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)}, step=step)
        mlflow.log_metrics({k: float(v) for k, v in summary.items()})
        if artifacts is not None and artifacts.exists():
            mlflow.log_artifacts(str(artifacts), artifact_path=artifacts.name)


def _fold_summary(result: FoldResult) -> dict:
    return {
        "fold": result.fold, "n_train": len(result.train_epoch_ids), "n_validation": len(result.val_epoch_ids),
        "n_predicted": len(result.predicted_epoch_ids), "best_epoch": result.best_epoch, "best_score": result.best_score,
        "seconds": round(result.seconds, 3), "history": [vars(r) for r in result.history],
        "train_epoch_ids": result.train_epoch_ids.tolist(), "validation_epoch_ids": result.val_epoch_ids.tolist(),
    }


# --- nodes -------------------------------------------------------------------------------------


def tune_deep_model(
    epoch_signals: EpochStore, epoch_table: pd.DataFrame, folds: pd.DataFrame, network: dict, deep_models: dict,
    optuna_storage: str, device: str, *, model_name: str,
) -> dict:
    """Optuna (TPE, seeded; pruned on the per-pass validation score) on the inner validation subjects.

    A trial trains on the CV folds minus the validation subjects and scores on those subjects;
    held-out test epochs are never read. ``optuna.n_trials: 0`` (default) skips the search.
    """
    search = deep_models.get("optuna") or {}
    space = (network.get("search") or {})
    n_trials = int(search.get("n_trials", 0))
    if n_trials <= 0 or not space:
        return {}
    base = model_config(network, deep_models, model_name=model_name)
    cv, _ = split_table(epoch_table, folds)
    classes = class_list(epoch_table)
    reader = _reader(epoch_signals, base)
    key = hashlib.sha256(json.dumps([base.to_dict(), space, search.get("budget"), sorted(cv["epoch_id"])], sort_keys=True, default=str).encode()).hexdigest()[:12]
    study = open_study(optuna_storage, f"deep-{model_name}-{key}", base.seed, search.get("pruner"))

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial, space)
        config = model_config(_merge(network, search.get("budget")), deep_models, params, model_name=model_name)

        def report(record) -> None:
            trial.report(record.val_score, record.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        with torch_threads(deep_models.get("torch_threads")):
            result = fit_model(config, _builder(config, reader, classes), reader, cv, classes, sfreq=epoch_signals.sfreq,
                               device=device, callbacks=[report], description=f"{model_name} trial {trial.number}")
        return result.best_score

    best = run_study(study, objective, n_trials, search.get("timeout_s"), [log_trial_to_mlflow(f"deep-{model_name}")])
    logger.info("%s: best parameters %s (study %s).", model_name, best, study.study_name)
    return best


def cross_validate_deep_model(
    epoch_signals: EpochStore, epoch_table: pd.DataFrame, folds: pd.DataFrame, network: dict, deep_models: dict,
    best_params: dict, device: str, *, model_name: str,
) -> tuple[pd.DataFrame, dict]:
    """One model per CV fold, trained without that fold: ``{model}.oof_probabilities`` and a report."""
    config = model_config(network, deep_models, best_params, model_name=model_name)
    cv, _ = split_table(epoch_table, folds)
    classes = class_list(epoch_table)
    reader = _reader(epoch_signals, config)
    checkpoints = _model_dir(deep_models, model_name) / "checkpoints"

    def log_fold(result: FoldResult) -> None:
        logger.info("%s fold %d: best pass %d, validation %s %.3f, %.1f s.", model_name, result.fold, result.best_epoch,
                    config.training["metric"], result.best_score, result.seconds)
        _log_nested_run(f"{model_name}-fold-{result.fold}", config, result.history,
                        {"best_epoch": result.best_epoch, "best_val_score": result.best_score, "seconds": result.seconds},
                        checkpoints / f"fold_{result.fold}")

    with torch_threads(deep_models.get("torch_threads")):
        proba, results = out_of_fold(config, _builder(config, reader, classes), reader, cv, classes, sfreq=epoch_signals.sfreq,
                                     device=device, checkpoint_root=checkpoints, on_fold_end=log_fold)
    oof = prediction_frame(cv["epoch_id"], cv["fold"], model_name, proba, classes)
    oof_scores = scores(cv["label"].astype(str).to_numpy(dtype=object), oof["pred"].to_numpy(dtype=object))
    logger.info("%s: OOF macro F1 %.3f, kappa %.3f on %d epochs.", model_name, oof_scores["macro_f1"], oof_scores["kappa"], len(cv))
    report = {"model": model_name, "config": config.to_dict(), **oof_scores, "folds": [_fold_summary(r) for r in results]}
    return oof, report


def refit_deep_model(
    epoch_signals: EpochStore, epoch_table: pd.DataFrame, folds: pd.DataFrame, network: dict, deep_models: dict,
    best_params: dict, device: str, *, model_name: str,
) -> tuple[pd.DataFrame, dict]:
    """The final model on all CV folds (early-stopped on CV subjects), its test probabilities and ONNX export."""
    config = model_config(network, deep_models, best_params, model_name=model_name)
    cv, test = split_table(epoch_table, folds)
    classes = class_list(epoch_table)
    reader = _reader(epoch_signals, config)
    model_dir = _model_dir(deep_models, model_name)
    with torch_threads(deep_models.get("torch_threads")):
        result: TrainingResult = fit_model(config, _builder(config, reader, classes), reader, cv, classes, sfreq=epoch_signals.sfreq,
                                           device=device, checkpoint_dir=model_dir / "checkpoints" / "final", description=f"{model_name} final")
        proba = predict_table(result.network, reader, test, device, config.training["predict_length"]) if len(test) else np.empty((0, len(classes)))
    metadata = model_metadata(config.architecture, config.network, classes, epoch_signals, reader.channels, reader.normalisation)
    save_model(model_dir, result.network, {**metadata, "config": config.to_dict()})
    _log_nested_run(f"{model_name}-final", config, result.history, {"best_epoch": result.best_epoch, "best_val_score": result.best_score}, model_dir)
    report = {
        "model": model_name, "best_epoch": result.best_epoch, "best_score": result.best_score, "model_dir": str(model_dir),
        "history": [vars(r) for r in result.history], "n_train": len(result.train_epoch_ids), "n_validation": len(result.val_epoch_ids),
    }
    return prediction_frame(test["epoch_id"], test["fold"], model_name, proba, classes), report


def plot_training_curves(cv_report: dict, refit_report: dict) -> plt.Figure:
    """Training and validation loss and score per pass, one line per fold model and the final model."""
    runs = [(f"fold {f['fold']}", f["history"]) for f in cv_report["folds"]] + [("final", refit_report["history"])]
    metric = cv_report["config"]["training"]["metric"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, (label, history) in enumerate(runs):
        colour = f"C{i}"
        passes = [h["epoch"] for h in history]
        axes[0].plot(passes, [h["train_loss"] for h in history], color=colour, label=f"{label} train")
        axes[0].plot(passes, [h["val_loss"] for h in history], color=colour, linestyle="--", label=f"{label} validation")
        axes[1].plot(passes, [h["train_score"] for h in history], color=colour)
        axes[1].plot(passes, [h["val_score"] for h in history], color=colour, linestyle="--")
    axes[0].set(xlabel="pass", ylabel="loss", title=f"{cv_report['model']}: loss")
    axes[1].set(xlabel="pass", ylabel=metric, title=f"{cv_report['model']}: {metric} (dashed: validation subjects)")
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def collect_deep_predictions(*predictions: pd.DataFrame) -> pd.DataFrame:
    """All deep models' OOF and test rows with a ``split`` column; arguments alternate OOF and test frames."""
    frames = []
    for oof, test in zip(predictions[::2], predictions[1::2], strict=True):
        frames += [oof.assign(split="oof"), test.assign(split="test")]
    combined = pd.concat(frames, ignore_index=True)
    return combined.astype({"epoch_id": "string", "model": "string", "pred": "string", "split": "string", "fold": np.int64})


def score_deep_models(deep_predictions: pd.DataFrame, epoch_table: pd.DataFrame, *cv_reports: dict) -> tuple[dict, dict]:
    """OOF macro F1 / kappa per deep model (a JSON table) and the same as MLflow metrics."""
    labels = epoch_table.set_index("epoch_id")["label"]
    table, metrics = {}, {}
    for model, rows in deep_predictions[deep_predictions["split"] == "oof"].groupby("model", sort=True):
        model_scores = scores(labels.loc[rows["epoch_id"]].astype(str).to_numpy(dtype=object), rows["pred"].to_numpy(dtype=object))
        table[str(model)] = {**model_scores, "fold_seconds": [f["seconds"] for r in cv_reports if r["model"] == model for f in r["folds"]]}
        metrics |= {f"{model}.oof_{name}": {"value": value, "step": 0} for name, value in model_scores.items()}
    return table, metrics

