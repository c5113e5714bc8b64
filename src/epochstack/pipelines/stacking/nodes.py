"""Nodes of the stacking pipeline: thin calls into epochstack.models (OOF, tuning, stacking)."""

from __future__ import annotations

import hashlib
import json
import logging

import mlflow
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from epochstack.errors import InputDataError
from epochstack.models.labels import class_list, proba_columns
from epochstack.models.manifest import build_manifest, folds_hash
from epochstack.models.oof import OOFResult, fit_estimator, out_of_fold, predict_proba, scores
from epochstack.models.registry import make_estimator, select_features
from epochstack.models.stacking import BaseModel, StackedModel, make_meta_learner, meta_features
from epochstack.models.tuning import cv_objective, log_trial_to_mlflow, open_study, run_study

logger = logging.getLogger(__name__)

META_NAME = "stack"


# --- shared helpers -------------------------------------------------------------------------


def feature_table(features: pd.DataFrame) -> pd.DataFrame:
    """Features indexed by ``epoch_id`` (accepts the id as a column or as the index)."""
    if "epoch_id" in features.columns:
        features = features.set_index("epoch_id")
    if features.index.name != "epoch_id":
        raise InputDataError("features", "has no epoch_id column.", "re-run the feature_engineering pipeline.")
    return features


def labelled_folds(features: pd.DataFrame, epoch_table: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """``epoch_id, fold, label`` of every epoch in ``folds``, sorted by epoch id, checked against features."""
    table = folds[["epoch_id", "fold"]].merge(epoch_table[["epoch_id", "label"]], on="epoch_id", how="left", validate="one_to_one")
    table = table.astype({"epoch_id": str, "fold": int}).sort_values("epoch_id", ignore_index=True)
    feature_ids = feature_table(features).index
    missing = ~table["epoch_id"].isin(feature_ids)
    if missing.any():
        raise InputDataError(
            "features", f"{int(missing.sum())} epochs of `folds` have no feature row (e.g. {table.epoch_id[missing].iloc[0]}).",
            "re-run feature_engineering after data_engineering.",
        )
    unused = len(feature_ids) - len(table)
    if unused > 0:
        logger.warning("%d feature rows belong to no fold and are not used.", unused)
    unlabelled = (table["fold"] >= 0) & table["label"].isna()
    if unlabelled.any():
        raise InputDataError("epoch_table", f"{int(unlabelled.sum())} CV epochs have no label.", "re-run data_engineering (it excludes unlabelled epochs).")
    return table


def prediction_frame(epoch_ids, fold, model: str, proba: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """The predictions contract: ``epoch_id, fold, model, proba_<class>..., pred``."""
    frame = pd.DataFrame({"epoch_id": np.asarray(epoch_ids, dtype=object), "fold": np.asarray(fold, dtype=np.int64), "model": model})
    frame[proba_columns(classes)] = proba
    frame["pred"] = np.asarray(classes, dtype=object)[proba.argmax(axis=1)] if len(proba) else []
    return frame.astype({"epoch_id": "string", "model": "string", "pred": "string"})


def _digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _tune(name: str, build_model, X, y, folds, classes, search: dict, stacking: dict, storage: str, study_key: dict) -> dict:
    """Optuna search on CV rows; the study name fingerprints the problem so a rerun resumes it."""
    if not search.get("enabled") or not search.get("space"):
        return {}
    study = open_study(storage, f"stacking-{name}-{_digest(study_key)}", int(stacking["seed"]), stacking.get("pruner"))
    objective = cv_objective(build_model, X, y, folds, classes, search["space"], stacking.get("imbalance"), int(stacking["seed"]))
    best = run_study(study, objective, int(search.get("n_trials", 0)), search.get("timeout_s"), [log_trial_to_mlflow(name)])
    logger.info("%s: best parameters %s (study %s).", name, best, study.study_name)
    if mlflow.active_run() is not None and best:
        mlflow.log_params({f"best.{name}.{key}": value for key, value in best.items()})
    return best


def _cv_report(name: str, result: OOFResult, y) -> dict:
    return {
        "model": name,
        **scores(y, result.predictions()),
        "folds": [
            {
                "fold": r.fold, "n_fit": len(r.fit_epoch_ids), "n_predicted": len(r.predicted_epoch_ids),
                "fit_seconds": round(r.fit_seconds, 4), "predict_seconds": round(r.predict_seconds, 4), "macro_f1": r.macro_f1,
            }
            for r in result.folds
        ],
    }


# --- one tabular base model (namespaced) ------------------------------------------------------


class _BaseModelData:
    """Rows of one base model's design matrix split into CV rows and held-out test rows."""

    def __init__(self, features, epoch_table, folds, base_model: dict, model_name: str):
        self.columns = select_features(feature_table(features).columns, base_model.get("features"), model_name)
        self.table = labelled_folds(features, epoch_table, folds)
        self.X = feature_table(features).loc[self.table["epoch_id"], self.columns].to_numpy(dtype=np.float64)
        self.cv = self.table["fold"].to_numpy() >= 0
        self.classes = class_list(epoch_table)

    def cv_rows(self):
        t = self.table[self.cv]
        return self.X[self.cv], t["label"].to_numpy(dtype=object), t["fold"].to_numpy(), t["epoch_id"].to_numpy()


def _estimator_builder(base_model: dict, stacking: dict, n_jobs: int):
    def build(params: dict):
        return make_estimator(base_model["estimator"], {**(base_model.get("params") or {}), **params}, int(stacking["seed"]), n_jobs)

    return build


def _thread_limit(stacking: dict):
    """Cap BLAS and OpenMP threads per fit (``stacking.threads``).

    On a shared or oversubscribed machine (``pytest -n 2``, other processes) spin-waiting thread
    pools make a 2-thread logistic regression or HistGradientBoosting fit 10-30x slower than a
    1-thread one; random forest / extra trees parallelise with ``n_jobs`` instead.
    """
    return threadpool_limits(limits=int(stacking.get("threads", 1)))


def _imbalance(base_model: dict, stacking: dict) -> dict:
    return {**(stacking.get("imbalance") or {}), **(base_model.get("imbalance") or {})}


def tune_base_model(
    features: pd.DataFrame, epoch_table: pd.DataFrame, folds: pd.DataFrame, base_model: dict, stacking: dict,
    optuna_storage: str, n_jobs: int, *, model_name: str,
) -> dict:
    """Optuna search for one base model on the CV folds only (its ``search`` section)."""
    data = _BaseModelData(features, epoch_table, folds, base_model, model_name)
    X, y, fold, _ = data.cv_rows()
    settings = {**stacking, "imbalance": _imbalance(base_model, stacking)}
    key = {"model": base_model, "columns": data.columns, "folds": folds_hash(data.table[data.cv]), "seed": stacking["seed"], "imbalance": settings["imbalance"]}
    with _thread_limit(stacking):
        return _tune(model_name, _estimator_builder(base_model, stacking, n_jobs), X, y, fold, data.classes, base_model.get("search") or {}, settings, optuna_storage, key)


def cross_validate_base_model(
    features: pd.DataFrame, epoch_table: pd.DataFrame, folds: pd.DataFrame, base_model: dict, best_params: dict,
    stacking: dict, n_jobs: int, *, model_name: str,
) -> tuple[pd.DataFrame, dict]:
    """Out-of-fold probabilities of one base model: each fold predicted by a model that never saw it."""
    data = _BaseModelData(features, epoch_table, folds, base_model, model_name)
    X, y, fold, ids = data.cv_rows()
    build = _estimator_builder(base_model, stacking, n_jobs)
    with _thread_limit(stacking):
        result = out_of_fold(lambda: build(best_params), X, y, fold, data.classes, ids, _imbalance(base_model, stacking), int(stacking["seed"]))
    report = _cv_report(model_name, result, y)
    logger.info("%s: OOF macro F1 %.3f, kappa %.3f on %d epochs.", model_name, report["macro_f1"], report["kappa"], len(y))
    return prediction_frame(ids, fold, model_name, result.proba, data.classes), report


def refit_base_model(
    features: pd.DataFrame, epoch_table: pd.DataFrame, folds: pd.DataFrame, base_model: dict, best_params: dict,
    stacking: dict, n_jobs: int, *, model_name: str,
) -> tuple[BaseModel, pd.DataFrame]:
    """Refit one base model on every CV epoch and predict the held-out test epochs (fold -1)."""
    data = _BaseModelData(features, epoch_table, folds, base_model, model_name)
    X, y, _, _ = data.cv_rows()
    build = _estimator_builder(base_model, stacking, n_jobs)
    test = data.table[~data.cv]
    with _thread_limit(stacking):
        estimator = fit_estimator(lambda: build(best_params), X, y, _imbalance(base_model, stacking), int(stacking["seed"]))
        proba = predict_proba(estimator, data.X[~data.cv], data.classes) if len(test) else np.empty((0, len(data.classes)))
    return BaseModel(model_name, estimator, data.columns), prediction_frame(test["epoch_id"], test["fold"], model_name, proba, data.classes)


# --- the stack ------------------------------------------------------------------------------


def _use_deep(setting) -> str:
    value = str(setting).lower()
    if value not in ("auto", "true", "false"):
        raise InputDataError("stacking.use_deep_models", f"is {setting!r}.", "use auto, true or false.")
    return value


def deep_base_predictions(deep_predictions: pd.DataFrame, folds: pd.DataFrame, classes: list[str], use_deep_models) -> pd.DataFrame:
    """Deep-model rows that join the stack, checked to line up with the current folds."""
    use = _use_deep(use_deep_models)
    if use == "false" or (use == "auto" and deep_predictions.empty):
        if use == "auto":
            logger.info("No deep-model predictions: stacking tabular base models only.")
        return pd.DataFrame()
    rerun = "re-run `kedro run --pipelines deep_models`, or set stacking.use_deep_models: false."
    if deep_predictions.empty:
        raise InputDataError("deep_predictions", "is empty but stacking.use_deep_models is true.", rerun)
    required = {"epoch_id", "fold", "model", "split", *proba_columns(classes)}
    if not required <= set(deep_predictions.columns):
        raise InputDataError("deep_predictions", f"lacks columns {sorted(required - set(deep_predictions.columns))}.", rerun)
    cv = folds[folds["fold"] >= 0].set_index("epoch_id")["fold"].astype(int)
    test_ids = set(folds.loc[folds["fold"] < 0, "epoch_id"].astype(str))
    deep = deep_predictions.astype({"epoch_id": str, "model": str, "split": str})
    for model, rows in deep.groupby("model", sort=True):
        oof = rows[rows["split"] == "oof"].set_index("epoch_id")["fold"].astype(int)
        same_folds = oof.index.is_unique and set(oof.index) == set(cv.index) and (oof.reindex(cv.index) == cv).all()
        if not same_folds:
            raise InputDataError(
                "deep_predictions", f"OOF rows of {model!r} do not cover the current CV epochs with the current folds "
                f"({len(oof)} rows for {len(cv)} CV epochs).", rerun,
            )
        if set(rows.loc[rows["split"] == "test", "epoch_id"]) != test_ids:
            raise InputDataError("deep_predictions", f"test rows of {model!r} do not match the held-out epochs.", rerun)
    logger.info("Deep base models joining the stack: %s.", sorted(deep["model"].unique()))
    return deep


def combine_base_predictions(
    folds: pd.DataFrame, epoch_table: pd.DataFrame, deep_predictions: pd.DataFrame, stacking: dict, *tabular: pd.DataFrame
) -> pd.DataFrame:
    """Every base model's OOF and test rows, one table with a ``split`` column, in base-model order.

    ``tabular`` alternates ``{model}.oof_probabilities`` and ``{model}.test_probabilities``.
    """
    classes = class_list(epoch_table)
    frames = []
    for oof, test in zip(tabular[::2], tabular[1::2], strict=True):
        frames += [oof.assign(split="oof"), test.assign(split="test")]
    deep = deep_base_predictions(deep_predictions, folds, classes, stacking.get("use_deep_models", "auto"))
    if not deep.empty:
        deep = deep.sort_values(["model", "split", "epoch_id"], kind="stable")
        frames.append(deep[["epoch_id", "fold", "model", *proba_columns(classes), "pred", "split"]])
    combined = pd.concat(frames, ignore_index=True)
    return combined.astype({"epoch_id": "string", "model": "string", "pred": "string", "split": "string", "fold": np.int64})


def _meta_rows(base_predictions: pd.DataFrame, epoch_table: pd.DataFrame, split: str):
    """Meta features ``(n_epochs, n_models * n_classes)``, epoch ids, folds and labels of one split."""
    classes = class_list(epoch_table)
    order = list(pd.unique(base_predictions["model"]))
    rows = base_predictions[base_predictions["split"] == split]
    first = rows[rows["model"] == order[0]].sort_values("epoch_id")
    ids = first["epoch_id"].to_numpy(dtype=object)
    probas = [rows[rows["model"] == m].set_index("epoch_id").loc[ids, proba_columns(classes)].to_numpy(dtype=np.float64) for m in order]
    labels = epoch_table.set_index("epoch_id").loc[ids, "label"].to_numpy(dtype=object)
    return meta_features(probas), ids, first["fold"].to_numpy(), labels, classes


def _meta_builder(stacking: dict):
    meta = stacking.get("meta_learner") or {}

    def build(params: dict):
        return make_meta_learner(meta.get("estimator", "logreg"), {**(meta.get("params") or {}), **params}, int(stacking["seed"]))

    return build


def tune_meta_learner(base_predictions: pd.DataFrame, epoch_table: pd.DataFrame, stacking: dict, optuna_storage: str) -> dict:
    """Optuna search for the meta-learner on the base models' OOF probabilities (CV folds only)."""
    X, ids, fold, y, classes = _meta_rows(base_predictions, epoch_table, "oof")
    meta = stacking.get("meta_learner") or {}
    key = {"meta": meta, "models": list(pd.unique(base_predictions["model"])), "oof": _digest(np.round(X, 6).tolist()), "seed": stacking["seed"]}
    settings = {**stacking, "imbalance": meta.get("imbalance") or {}}
    with _thread_limit(stacking):
        return _tune(META_NAME, _meta_builder(stacking), X, y, fold, classes, meta.get("search") or {}, settings, optuna_storage, key)


def cross_validate_meta_learner(
    base_predictions: pd.DataFrame, epoch_table: pd.DataFrame, meta_best_params: dict, stacking: dict
) -> tuple[pd.DataFrame, dict]:
    """The stack's own OOF score: the meta-learner refit per fold on the other folds' OOF rows."""
    X, ids, fold, y, classes = _meta_rows(base_predictions, epoch_table, "oof")
    build = _meta_builder(stacking)
    imbalance = (stacking.get("meta_learner") or {}).get("imbalance")
    with _thread_limit(stacking):
        result = out_of_fold(lambda: build(meta_best_params), X, y, fold, classes, ids, imbalance, int(stacking["seed"]))
    report = _cv_report(META_NAME, result, y)
    logger.info("stack: OOF macro F1 %.3f, kappa %.3f.", report["macro_f1"], report["kappa"])
    return prediction_frame(ids, fold, META_NAME, result.proba, classes), report


def refit_meta_learner(
    base_predictions: pd.DataFrame, epoch_table: pd.DataFrame, meta_best_params: dict, stacking: dict
) -> tuple[object, pd.DataFrame]:
    """Meta-learner refit on all OOF rows, applied to the refit base models' test probabilities."""
    X, _, _, y, classes = _meta_rows(base_predictions, epoch_table, "oof")
    imbalance = (stacking.get("meta_learner") or {}).get("imbalance")
    build = _meta_builder(stacking)
    with _thread_limit(stacking):
        meta = fit_estimator(lambda: build(meta_best_params), X, y, imbalance, int(stacking["seed"]))
    X_test, test_ids, _, _, _ = _meta_rows(base_predictions, epoch_table, "test")
    proba = predict_proba(meta, X_test, classes) if len(test_ids) else np.empty((0, len(classes)))
    test = prediction_frame(test_ids, np.full(len(test_ids), -1), META_NAME, proba, classes)
    return meta, test[["epoch_id", "pred", *proba_columns(classes)]]


def assemble_stacking_model(meta_learner, base_predictions: pd.DataFrame, epoch_table: pd.DataFrame, *base_models: BaseModel) -> StackedModel:
    """The fitted stack for inference: tabular base models, deep model names, meta-learner."""
    tabular = [m.name for m in base_models]
    external = [m for m in pd.unique(base_predictions["model"]) if m not in tabular]
    return StackedModel(class_list(epoch_table), list(base_models), meta_learner, external)


def collect_best_params(meta_best_params: dict, *model_best_params: dict, model_names: list[str]) -> dict:
    """Best parameters of every searched model and of the meta-learner, by model name."""
    return {**dict(zip(model_names, model_best_params, strict=True)), META_NAME: meta_best_params}


def build_stacking_manifest(stacking_model: StackedModel, folds: pd.DataFrame, stacking: dict, best_params: dict) -> dict:
    """Classes, base-model order, features per model, folds hash, parameters, library versions."""
    return build_manifest(
        stacking_model.classes,
        stacking_model.base_model_order,
        {m.name: m.feature_columns for m in stacking_model.base_models},
        folds,
        stacking,
        best_params,
    )


def collect_model_predictions(base_predictions: pd.DataFrame, stacking_oof: pd.DataFrame, test_predictions: pd.DataFrame) -> pd.DataFrame:
    """Every base model and the stack, OOF and test rows: what the evaluation pipeline reads."""
    stack_test = test_predictions.assign(fold=-1, model=META_NAME, split="test")
    frames = [base_predictions, stacking_oof.assign(split="oof"), stack_test[base_predictions.columns]]
    return pd.concat(frames, ignore_index=True).astype({"model": "string", "split": "string"})


def score_models(model_predictions: pd.DataFrame, epoch_table: pd.DataFrame, *cv_reports: dict) -> tuple[dict, dict]:
    """OOF macro F1 / kappa per model (a table for people) and MLflow metrics incl. fold timings."""
    labels = epoch_table.set_index("epoch_id")["label"]
    table, metrics = {}, {}
    for model, rows in model_predictions[model_predictions["split"] == "oof"].groupby("model", sort=False):
        model_scores = scores(labels.loc[rows["epoch_id"]].to_numpy(dtype=object), rows["pred"].to_numpy(dtype=object))
        table[model] = model_scores
        metrics |= {f"{model}.oof_{name}": {"value": value, "step": 0} for name, value in model_scores.items()}
    for report in cv_reports:
        for key in ("fit_seconds", "predict_seconds", "macro_f1"):
            metrics[f"{report['model']}.fold_{key}"] = [{"value": float(f[key]), "step": i} for i, f in enumerate(report["folds"])]
    best_base = max((s["macro_f1"] for m, s in table.items() if m != META_NAME), default=float("nan"))
    logger.info("OOF scores (macro F1 / kappa): %s", {m: (round(s["macro_f1"], 3), round(s["kappa"], 3)) for m, s in table.items()})
    if META_NAME in table:
        metrics["stack.gain_over_best_base_macro_f1"] = {"value": table[META_NAME]["macro_f1"] - best_base, "step": 0}
    return {"oof_scores": table, "cv_reports": list(cv_reports)}, metrics
