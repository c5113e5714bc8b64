"""The stacking pipeline's steps, free of Kedro: base models from ``stacking.base_models``
entries, deep-model rows checked against the folds, the stack on their probabilities (chosen
again in every outer fold, :class:`~epochstack.models.stacking.SelectedStack`) and OOF scores."""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from epochstack.errors import InputDataError
from epochstack.models.engine import EpochData, out_of_fold, prediction_frame, scores
from epochstack.models.fitting import fit_base_model
from epochstack.models.labels import proba_columns
from epochstack.models.registry import build_base_model, reads_features, select_features
from epochstack.models.signal_models import unfit_reason
from epochstack.models.stacking import SelectedStack, meta_table
from epochstack.models.tuning import log_study_to_mlflow

logger = logging.getLogger(__name__)

META_NAME = "stack"


def _build(
    name: str, spec: dict, classes: list[str], columns, seed: int, imbalance: dict, params: dict
):
    return build_base_model(
        name, spec, classes, tuned=params, columns=columns, seed=seed, imbalance=imbalance
    )


def fit_base_models(
    names: list[str],
    stacking: dict,
    data: EpochData,
    cv_rows: np.ndarray,
    test_rows: np.ndarray,
    **settings,
) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict, dict]:
    """Every named ``stacking.base_models`` entry through :func:`fit_base_model` (``settings``:
    its ``protocol``, ``storage`` and ``executor``), one after the other, with
    ``stacking.threads`` BLAS/OpenMP threads per fit.

    Returns OOF and test probabilities (long format), the refitted models, a report and the
    per-fold seconds of each model; a raw-signal model that cannot fit these epochs is reported.
    """
    oof_frames, test_frames, fitted, reports, timings = [], [], {}, {}, {}
    for name in names:
        spec, seed = stacking["base_models"][name], int(stacking["seed"])
        tabular = reads_features(spec)
        reason = (  # why a raw-signal model's reference cannot fit these epochs (None: it can)
            None
            if tabular or data.signals is None
            else unfit_reason(spec["estimator"], len(data.signals.channel_names), len(data.classes))
        )
        if reason:
            logger.warning("%s is left out of this run: %s.", name, reason)
            reports[name] = {"model": name, "left_out": reason}
            continue
        imbalance = {**(stacking.get("imbalance") or {}), **(spec.get("imbalance") or {})}
        columns = (
            select_features(data.features.columns, spec.get("features"), name) if tabular else None
        )
        build = partial(_build, name, spec, data.classes, columns, seed, imbalance)
        with threadpool_limits(limits=int(stacking.get("threads", 1))):
            result = fit_base_model(
                name,
                build,
                data,
                cv_rows,
                test_rows,
                search=spec.get("search"),
                seed=seed,
                key={"spec": spec, "imbalance": imbalance, "columns": columns},
                columns=columns,
                refit_beside_folds=not tabular,
                **settings,
            )
        oof, test = result.frames(data, cv_rows, test_rows)
        oof_frames.append(oof)
        test_frames.append(test)
        fitted[name] = result.final
        reports[name] = result.report(data, cv_rows)
        timings[name] = result.timings()
        for study in result.studies:
            log_study_to_mlflow(settings["storage"], study, name)
    if not fitted:
        raise InputDataError(
            "stacking.enabled",
            f"leaves no base model that fits these data ({reports}).",
            "enable e.g. logreg.",
        )
    return _long(oof_frames), _long(test_frames), fitted, reports, timings


def _long(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True).astype(
        {"epoch_id": "string", "model": "string", "pred": "string", "fold": np.int64}
    )


def deep_base_predictions(
    deep_oof: pd.DataFrame,
    deep_test: pd.DataFrame,
    folds: pd.DataFrame,
    classes: list[str],
    use_deep_models,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deep-model rows that join the stack, checked to line up with the current folds."""
    use = str(use_deep_models).lower()
    if use not in ("auto", "true", "false"):
        raise InputDataError(
            "stacking.use_deep_models", f"is {use_deep_models!r}.", "use auto, true or false."
        )
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


def _probabilities(frame: pd.DataFrame, classes: list[str], ids, models) -> dict[str, np.ndarray]:
    """Each of ``models``' probabilities on the epochs ``ids``, in that order."""
    return {
        m: rows.set_index(rows["epoch_id"].astype(str))[proba_columns(classes)].loc[ids].to_numpy()
        for m, rows in frame.groupby("model", sort=False)
        if m in models
    }


def stack_input(
    oof: pd.DataFrame, test: pd.DataFrame, data: EpochData, cv_rows: np.ndarray, test_rows
) -> tuple[EpochData, list[str], list[str]]:
    """What the stack reads: base-model OOF probabilities on the CV epochs and test
    probabilities on the held-out ones (an :class:`EpochData` whose features are the meta
    table), the base models it stacks and those left out (one class predicted in a CV fold)."""
    classes = data.classes
    labels = data.table.set_index("epoch_id")["label"].astype(str)
    left_out = _degenerate(oof, labels)
    if left_out:
        logger.warning("Left out of the stack (one class predicted in a CV fold): %s.", left_out)
    models = [m for m in pd.unique(oof["model"]) if m not in left_out] or list(
        pd.unique(oof["model"])
    )
    cv_ids, test_ids = data.epoch_ids(cv_rows), data.epoch_ids(test_rows)
    meta = EpochData(
        data.table,
        classes,
        features=pd.concat(
            [
                meta_table(_probabilities(oof, classes, cv_ids, models), cv_ids, classes),
                meta_table(_probabilities(test, classes, test_ids, models), test_ids, classes),
            ]
        ),
    )
    return meta, models, left_out


def fit_stack(
    oof: pd.DataFrame,
    test: pd.DataFrame,
    data: EpochData,
    cv_rows: np.ndarray,
    test_rows: np.ndarray,
    settings: dict,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame, SelectedStack, dict]:
    """The stack on base-model OOF rows: its own OOF probabilities (chosen again in every outer
    fold), the stack chosen on all OOF rows, its test probabilities and a report of the choice."""
    classes = data.classes
    meta, models, left_out = stack_input(oof, test, data, cv_rows, test_rows)
    cv_ids, test_ids = data.epoch_ids(cv_rows), data.epoch_ids(test_rows)
    stack_oof = out_of_fold(lambda: SelectedStack(models, classes, settings, seed), meta, cv_rows)
    final = SelectedStack(models, classes, settings, seed).fit(meta, cv_rows)
    test_proba = (
        final.predict_proba(meta, test_rows) if len(test_rows) else np.empty((0, len(classes)))
    )
    report = {
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


def oof_scores(model_predictions: pd.DataFrame, epoch_table: pd.DataFrame) -> dict[str, dict]:
    """OOF macro F1 / kappa (and the other :func:`scores`) of every model in the table."""
    labels = epoch_table.astype({"epoch_id": str}).set_index("epoch_id")["label"]
    return {
        model: scores(
            labels.loc[rows["epoch_id"].astype(str)].to_numpy(dtype=object),
            rows["pred"].to_numpy(dtype=object),
        )
        for model, rows in model_predictions[model_predictions["split"] == "oof"].groupby(
            "model", sort=False
        )
    }
