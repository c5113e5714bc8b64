"""Nodes of the stacking pipeline: thin calls into epochstack.models.

The model set is a parameter (``stacking.enabled``, ``deep_models.enabled``), read when the
nodes run, so ``--env``, ``--params`` and ``dvc exp run -S`` all change it; the pipeline's shape
never depends on it.
"""

from __future__ import annotations

import logging

import mlflow
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.execution import Executor
from epochstack.models import stack_training as steps
from epochstack.models.fitting import model_data, resolve_protocol
from epochstack.models.labels import class_list
from epochstack.models.manifest import build_manifest, epoch_shape
from epochstack.models.registry import enabled_models
from epochstack.models.stacking import SelectedStack, StackedModel
from epochstack.serving import log_serving_model as log_and_register

logger = logging.getLogger(__name__)


def train_base_models(
    features: pd.DataFrame,
    epoch_signals,
    epoch_table: pd.DataFrame,
    folds: pd.DataFrame,
    stacking: dict,
    deep_models: dict,
    protocol: str,
    optuna_storage: str,
    executor: dict,
) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict, dict]:
    """Every enabled base model through its life (tune, OOF, refit, test), one after the other.

    Returns OOF and test probabilities (long format, one ``model`` per block), the refitted
    models by name, a report per model (scores, folds, tuned parameters, studies) and the
    per-fold seconds of each model (for MLflow: timings stay out of the versioned reports).
    """
    names = enabled_models(stacking, "stacking", "base_models")
    if not names:
        raise InputDataError(
            "stacking.enabled",
            "is empty: the stack needs at least one base model.",
            "enable e.g. logreg.",
        )
    data, cv_rows, test_rows = model_data(epoch_table, folds, features, epoch_signals)
    return steps.fit_base_models(
        names,
        stacking,
        data,
        cv_rows,
        test_rows,
        protocol=resolve_protocol(protocol, deep_models, stacking),
        storage=optuna_storage,
        executor=Executor.from_params(executor),
    )


def train_stack(
    base_oof: pd.DataFrame,
    base_test: pd.DataFrame,
    deep_oof: pd.DataFrame,
    deep_test: pd.DataFrame,
    epoch_table: pd.DataFrame,
    folds: pd.DataFrame,
    stacking: dict,
    deep_models: dict,
    protocol: str,
) -> tuple[pd.DataFrame, pd.DataFrame, SelectedStack, dict]:
    """The stack's own OOF probabilities (chosen again in every outer fold), the final stack
    chosen on all OOF rows and its test predictions, and a report of the choice."""
    data, cv_rows, test_rows = model_data(epoch_table, folds)
    deep_oof, deep_test = steps.deep_base_predictions(
        deep_oof, deep_test, folds, data.classes, stacking.get("use_deep_models", "auto")
    )
    stack_oof, test_frame, final, report = steps.fit_stack(
        pd.concat([base_oof, deep_oof], ignore_index=True),
        pd.concat([base_test, deep_test], ignore_index=True),
        data,
        cv_rows,
        test_rows,
        stacking.get("stack") or {},
        int(stacking["seed"]),
    )
    report = {"protocol": resolve_protocol(protocol, deep_models, stacking), **report}
    return stack_oof, test_frame, final, report


def assemble_stacking_model(
    meta_learner: SelectedStack,
    fitted_base_models: dict,
    fitted_deep_models: dict | None,
    epoch_table: pd.DataFrame,
) -> StackedModel:
    """The fitted stack for inference: every base model it reads (tabular, raw-signal, deep)."""
    available = {**fitted_base_models, **(fitted_deep_models or {})}
    missing = [m for m in meta_learner.base_models if m not in available]
    if missing:
        raise InputDataError(
            "fitted_deep_models",
            f"has no fitted model for {missing}.",
            "re-run `kedro run --pipelines deep_models`.",
        )
    base = {m: available[m] for m in meta_learner.base_models}
    return StackedModel(
        class_list(epoch_table), base, meta_learner, {m: model.reads for m, model in base.items()}
    )


def build_stacking_manifest(
    stacking_model: StackedModel,
    folds: pd.DataFrame,
    stacking: dict,
    dataset: dict,
    preprocessing: dict,
    features: dict,
    stack_report: dict,
    epoch_signals,
) -> dict:
    """Classes, base models and what they read, folds hash, the training-time dataset,
    preprocessing and feature parameters that inference must reuse, and the epochs the model
    reads (channels, rate, samples)."""
    return build_manifest(
        stacking_model,
        folds,
        training={
            "dataset": {
                k: dataset.get(k) for k in ("format", "label_mapping", "channels", "sfreq")
            },
            "preprocessing": preprocessing,
            "features": features,
        },
        stacking=stacking,
        selected=stack_report["selected"],
        protocol=stack_report["protocol"],
        epochs=epoch_shape(epoch_signals),
    )


def collect_model_predictions(
    base_oof: pd.DataFrame,
    base_test: pd.DataFrame,
    deep_oof: pd.DataFrame,
    deep_test: pd.DataFrame,
    stacking_oof: pd.DataFrame,
    test_predictions: pd.DataFrame,
) -> pd.DataFrame:
    """Every base model (deep ones included) and the stack, OOF and test rows: the evaluation input."""
    frames = [base_oof.assign(split="oof"), base_test.assign(split="test")]
    if not deep_oof.empty:
        frames += [deep_oof.assign(split="oof"), deep_test.assign(split="test")]
    frames += [stacking_oof.assign(split="oof"), test_predictions.assign(split="test")]
    columns = list(frames[0].columns)
    return pd.concat([f[columns] for f in frames], ignore_index=True).astype(
        {"model": "string", "split": "string"}
    )


def score_models(
    model_predictions: pd.DataFrame,
    epoch_table: pd.DataFrame,
    base_model_timings: dict,
    stack_report: dict,
) -> tuple[dict, dict]:
    """OOF macro F1 / kappa per model and the stack's choice (a JSON table, DVC metrics: no
    timings, so that a rerun with the same results compares equal) and MLflow metrics incl. the
    per-fold seconds of each base model."""
    table = steps.oof_scores(model_predictions, epoch_table)
    metrics = {
        f"{model}.oof_{name}": {"value": value, "step": 0}
        for model, model_scores in table.items()
        for name, value in model_scores.items()
    }
    for name, model_timings in base_model_timings.items():
        for key, seconds in model_timings.items():
            metrics[f"{name}.{key}"] = [
                {"value": float(value), "step": i} for i, value in enumerate(seconds)
            ]
    best_base = max(
        (s["macro_f1"] for m, s in table.items() if m != steps.META_NAME), default=float("nan")
    )
    logger.info(
        "OOF scores (macro F1 / kappa): %s",
        {m: (round(s["macro_f1"], 3), round(s["kappa"], 3)) for m, s in table.items()},
    )
    if steps.META_NAME in table:
        metrics["stack.gain_over_best_base_macro_f1"] = {
            "value": table[steps.META_NAME]["macro_f1"] - best_base,
            "step": 0,
        }
    if mlflow.active_run() is not None:
        mlflow.set_tag("stack.selected", stack_report["selected"])
    return {"oof_scores": table, "stack": stack_report}, metrics


def log_serving_model(
    stacking_model: StackedModel,
    stacking_manifest: dict,
    epoch_signals,
    dataset: dict,
    serving: dict,
) -> None:
    """The stack as an MLflow Model in this run, registered (``epochstack.serving``)."""
    log_and_register(stacking_model, stacking_manifest, epoch_signals, dataset, serving)
