"""Nodes of the stacking pipeline: thin calls into epochstack.models.

The model set is a parameter (``stacking.enabled``, ``deep_models.enabled``), read when the
nodes run, so ``--env``, ``--params`` and ``dvc exp run -S`` all change it; the pipeline's shape
never depends on it.
"""

from __future__ import annotations

import logging
from functools import partial

import mlflow
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from epochstack.errors import InputDataError
from epochstack.execution import Executor
from epochstack.models.engine import EpochData, out_of_fold, prediction_frame, scores
from epochstack.models.fitting import fit_base_model, model_data, resolve_protocol
from epochstack.models.labels import class_list, proba_columns
from epochstack.models.manifest import build_manifest, epoch_shape
from epochstack.models.registry import (
    build_base_model,
    enabled_models,
    reads_features,
    select_features,
)
from epochstack.models.signal_models import unfit_reason
from epochstack.models.stacking import SelectedStack, StackedModel, meta_table
from epochstack.models.tuning import log_study_to_mlflow
from epochstack.serving import log_serving_model as log_and_register

logger = logging.getLogger(__name__)

META_NAME = "stack"
SPLIT_COLUMNS = ["epoch_id", "fold", "model", "split", "pred"]


def _imbalance(spec: dict, stacking: dict) -> dict:
    return {**(stacking.get("imbalance") or {}), **(spec.get("imbalance") or {})}


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
    protocol = resolve_protocol(protocol, deep_models, stacking)
    run_on = Executor.from_params(executor)
    seed = int(stacking["seed"])
    oof_frames, test_frames, fitted, reports, timings = [], [], {}, {}, {}
    for name in names:
        spec = stacking["base_models"][name]
        reason = _unfit_reason(spec, data)
        if reason:
            logger.warning("%s is left out of this run: %s.", name, reason)
            reports[name] = {"model": name, "left_out": reason}
            continue
        columns = (
            select_features(data.features.columns, spec.get("features"), name)
            if reads_features(spec)
            else None
        )
        build = partial(_build, name, spec, data.classes, columns, seed, _imbalance(spec, stacking))
        with threadpool_limits(limits=int(stacking.get("threads", 1))):
            result = fit_base_model(
                name,
                build,
                data,
                cv_rows,
                test_rows,
                search=spec.get("search"),
                protocol=protocol,
                storage=optuna_storage,
                seed=seed,
                key={"spec": spec, "imbalance": _imbalance(spec, stacking), "columns": columns},
                columns=columns,
                executor=run_on,
                refit_beside_folds=not reads_features(spec),
            )
        oof, test = result.frames(data, cv_rows, test_rows)
        oof_frames.append(oof)
        test_frames.append(test)
        fitted[name] = result.final
        reports[name] = result.report(data, cv_rows)
        timings[name] = result.timings()
        for study in result.studies:
            log_study_to_mlflow(optuna_storage, study, name)
    if not fitted:
        raise InputDataError(
            "stacking.enabled",
            f"leaves no base model that fits these data ({reports}).",
            "enable e.g. logreg.",
        )
    return _long(oof_frames), _long(test_frames), fitted, reports, timings


def _unfit_reason(spec: dict, data) -> str | None:
    """Why a raw-signal model's reference cannot be fitted on these epochs (None: it can)."""
    if reads_features(spec) or data.signals is None:
        return None
    return unfit_reason(spec["estimator"], len(data.signals.channel_names), len(data.classes))


def _build(
    name: str, spec: dict, classes: list[str], columns, seed: int, imbalance: dict, params: dict
):
    return build_base_model(
        name, spec, classes, tuned=params, columns=columns, seed=seed, imbalance=imbalance
    )


def _long(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True).astype(
        {"epoch_id": "string", "model": "string", "pred": "string", "fold": np.int64}
    )


def _use_deep(setting) -> str:
    value = str(setting).lower()
    if value not in ("auto", "true", "false"):
        raise InputDataError(
            "stacking.use_deep_models", f"is {setting!r}.", "use auto, true or false."
        )
    return value


def deep_base_predictions(
    deep_oof: pd.DataFrame,
    deep_test: pd.DataFrame,
    folds: pd.DataFrame,
    classes: list[str],
    use_deep_models,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deep-model rows that join the stack, checked to line up with the current folds."""
    use = _use_deep(use_deep_models)
    if use == "false" or (use == "auto" and deep_oof.empty):
        if use == "auto":
            logger.info("No deep-model predictions: stacking the other base models only.")
        return pd.DataFrame(), pd.DataFrame()
    rerun = "re-run `kedro run --pipelines deep_models`, or set stacking.use_deep_models: false."
    if deep_oof.empty:
        raise InputDataError(
            "deep_oof_probabilities", "is empty but stacking.use_deep_models is true.", rerun
        )
    required = {"epoch_id", "fold", "model", *proba_columns(classes)}
    for name, table in (
        ("deep_oof_probabilities", deep_oof),
        ("deep_test_probabilities", deep_test),
    ):
        if not required <= set(table.columns):
            raise InputDataError(
                name, f"lacks columns {sorted(required - set(table.columns))}.", rerun
            )
    cv = (
        folds[folds["fold"] >= 0]
        .astype({"epoch_id": str})
        .set_index("epoch_id")["fold"]
        .astype(int)
    )
    test_ids = set(folds.loc[folds["fold"] < 0, "epoch_id"].astype(str))
    for model, rows in deep_oof.astype({"epoch_id": str}).groupby("model", sort=True):
        oof = rows.set_index("epoch_id")["fold"].astype(int)
        if not (
            oof.index.is_unique
            and set(oof.index) == set(cv.index)
            and (oof.reindex(cv.index) == cv).all()
        ):
            raise InputDataError(
                "deep_oof_probabilities",
                f"rows of {model!r} do not cover the current CV epochs with the current folds "
                f"({len(oof)} rows for {len(cv)} CV epochs).",
                rerun,
            )
        if set(deep_test.loc[deep_test["model"] == model, "epoch_id"].astype(str)) != test_ids:
            raise InputDataError(
                "deep_test_probabilities",
                f"rows of {model!r} do not match the held-out epochs.",
                rerun,
            )
    logger.info("Deep base models joining the stack: %s.", sorted(deep_oof["model"].unique()))
    return deep_oof, deep_test


def _degenerate(oof: pd.DataFrame, labels: pd.Series) -> list[str]:
    """Models with a CV fold whose model predicted one class while the fold held several."""
    merged = oof.assign(label=labels.reindex(oof["epoch_id"].astype(str)).to_numpy())
    per_fold = merged.groupby(["model", "fold"]).agg(
        n_pred=("pred", "nunique"), n_true=("label", "nunique")
    )
    bad = per_fold[(per_fold["n_pred"] == 1) & (per_fold["n_true"] > 1)]
    return sorted(bad.index.get_level_values("model").unique())


def _probabilities(frame: pd.DataFrame, classes: list[str]) -> dict[str, pd.DataFrame]:
    return {
        m: rows.set_index(rows["epoch_id"].astype(str))[proba_columns(classes)]
        for m, rows in frame.groupby("model", sort=False)
    }


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
    classes = data.classes
    deep_oof, deep_test = deep_base_predictions(
        deep_oof, deep_test, folds, classes, stacking.get("use_deep_models", "auto")
    )
    oof = pd.concat([base_oof, deep_oof], ignore_index=True)
    test = pd.concat([base_test, deep_test], ignore_index=True)
    labels = data.table.set_index("epoch_id")["label"].astype(str)
    left_out = _degenerate(oof, labels)
    if left_out:
        logger.warning("Left out of the stack (one class predicted in a CV fold): %s.", left_out)
    models = [m for m in pd.unique(oof["model"]) if m not in left_out] or list(
        pd.unique(oof["model"])
    )
    cv_ids, test_ids = data.epoch_ids(cv_rows), data.epoch_ids(test_rows)
    oof_probas = {
        m: p.loc[cv_ids].to_numpy() for m, p in _probabilities(oof, classes).items() if m in models
    }
    test_probas = {
        m: p.loc[test_ids].to_numpy()
        for m, p in _probabilities(test, classes).items()
        if m in models
    }
    meta = EpochData(
        data.table,
        classes,
        features=pd.concat(
            [meta_table(oof_probas, cv_ids, classes), meta_table(test_probas, test_ids, classes)]
        ),
    )
    settings, seed = stacking.get("stack") or {}, int(stacking["seed"])
    stack_oof = out_of_fold(lambda: SelectedStack(models, classes, settings, seed), meta, cv_rows)
    final = SelectedStack(models, classes, settings, seed).fit(meta, cv_rows)
    test_proba = (
        final.predict_proba(meta, test_rows) if len(test_rows) else np.empty((0, len(classes)))
    )
    report = {
        "protocol": resolve_protocol(protocol, deep_models, stacking),
        "selected": final.selected_,
        "stacked_models": models,
        "left_out": left_out,
        "final": final.report(),
        **scores(data.labels(cv_rows), stack_oof.predictions()),
        "outer_folds": [{"fold": r.fold, **r.model_report} for r in stack_oof.folds],
        # Only with the robust rule, so that the default run's report keeps its keys.
        **({"noise_z": float(settings["noise_z"])} if settings.get("noise_z") is not None else {}),
    }
    logger.info(
        "Stack: %s (OOF macro F1 %.3f, kappa %.3f); candidates %s.",
        final.selected_,
        report["macro_f1"],
        report["kappa"],
        final.scores_,
    )
    stack_oof_frame = prediction_frame(
        cv_ids, data.folds(cv_rows), META_NAME, stack_oof.proba, classes
    )
    test_frame = prediction_frame(test_ids, data.folds(test_rows), META_NAME, test_proba, classes)
    return stack_oof_frame, test_frame, final, report


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
    labels = epoch_table.astype({"epoch_id": str}).set_index("epoch_id")["label"]
    table, metrics = {}, {}
    for model, rows in model_predictions[model_predictions["split"] == "oof"].groupby(
        "model", sort=False
    ):
        model_scores = scores(
            labels.loc[rows["epoch_id"].astype(str)].to_numpy(dtype=object),
            rows["pred"].to_numpy(dtype=object),
        )
        table[model] = model_scores
        metrics |= {
            f"{model}.oof_{name}": {"value": value, "step": 0}
            for name, value in model_scores.items()
        }
    for name, model_timings in base_model_timings.items():
        for key, seconds in model_timings.items():
            metrics[f"{name}.{key}"] = [
                {"value": float(value), "step": i} for i, value in enumerate(seconds)
            ]
    best_base = max(
        (s["macro_f1"] for m, s in table.items() if m != META_NAME), default=float("nan")
    )
    logger.info(
        "OOF scores (macro F1 / kappa): %s",
        {m: (round(s["macro_f1"], 3), round(s["kappa"], 3)) for m, s in table.items()},
    )
    if META_NAME in table:
        metrics["stack.gain_over_best_base_macro_f1"] = {
            "value": table[META_NAME]["macro_f1"] - best_base,
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
