"""The life of every base model, whatever its kind: tune, out-of-fold, refit, predict the test set.

``protocol`` decides where tuning happens (``auto`` picks one, see :func:`resolve_protocol`):

- ``nested``: inside each outer CV fold, on that fold's training rows only (a
  :class:`~epochstack.models.tuning.TunedModel` is the fold model), so the OOF scores are
  unbiased estimates of the whole procedure, tuning included;
- ``non_nested``: once on all CV folds, then the OOF loop with the best parameters; cheaper,
  but its OOF scores are optimistic (they steered the choice) and are labelled
  ``oof_selection_biased`` by the evaluation.

Either way the final model is tuned on all CV folds and refitted on all CV epochs, and only it
predicts the held-out test epochs (fold -1), which tuning never sees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.execution import Executor
from epochstack.models.engine import (
    TEST_FOLD,
    EpochData,
    EpochModel,
    OOFResult,
    out_of_fold,
    prediction_frame,
    scores,
)
from epochstack.models.labels import class_list
from epochstack.models.tuning import TunedModel, data_fingerprint, searching, tune

logger = logging.getLogger(__name__)

PROTOCOLS = ("nested", "non_nested")
# auto: nested while every searched base model runs at most this many trials and no deep network
# is searched (nested tuning repeats every search once per outer fold, plus once for the final
# model); non_nested beyond, its OOF metrics labelled selection-biased.
AUTO_NESTED_MAX_TRIALS = 20


def resolve_protocol(protocol: str, deep_models: dict, stacking: dict | None = None) -> str:
    """``nested`` or ``non_nested``: the given one, or for ``auto`` nested when affordable.

    Without ``stacking`` (the deep_models pipeline) only the networks decide: their tuning is
    the only place where the protocol changes what deep_models computes.
    """
    if protocol in PROTOCOLS:
        return protocol
    if protocol != "auto":
        raise InputDataError(
            "evaluation.protocol", f"is {protocol!r}.", f"use auto or one of {list(PROTOCOLS)}."
        )
    stacking = stacking or {"base_models": {}}
    searched = [
        int((stacking["base_models"][m].get("search") or {}).get("n_trials", 0))
        for m in stacking.get("enabled") or []
        if searching(stacking["base_models"].get(m, {}).get("search"))
    ]
    deep_trials = int((deep_models.get("optuna") or {}).get("n_trials", 0))
    deep_searched = deep_trials > 0 and any(
        (deep_models.get("networks") or {}).get(n, {}).get("search")
        for n in deep_models.get("enabled") or []
    )
    affordable = not deep_searched and max(searched, default=0) <= AUTO_NESTED_MAX_TRIALS
    return "nested" if affordable else "non_nested"


TABLE_COLUMNS = ["epoch_id", "recording_id", "subject_id", "signal_row", "label", "fold"]


def model_data(
    epoch_table: pd.DataFrame,
    folds: pd.DataFrame,
    features: pd.DataFrame | None = None,
    signals=None,
) -> tuple[EpochData, np.ndarray, np.ndarray]:
    """The epochs of ``folds`` (sorted by id) as :class:`EpochData`, with CV and test row positions."""
    table = (
        folds[["epoch_id", "fold"]]
        .astype({"epoch_id": str, "fold": int})
        .merge(
            epoch_table.astype({"epoch_id": str}).drop(columns=["fold"], errors="ignore"),
            on="epoch_id",
            how="left",
            validate="one_to_one",
            indicator=True,
        )
    )
    missing = table["_merge"] == "left_only"
    if missing.any():
        raise InputDataError(
            "folds",
            f"{int(missing.sum())} epoch ids are not in epoch_table (e.g. {table.epoch_id[missing].iloc[0]}).",
            "re-run data_engineering.",
        )
    table = table.sort_values("epoch_id", ignore_index=True)[TABLE_COLUMNS]
    unused = len(epoch_table) - len(table)
    if unused > 0:
        logger.warning("%d epochs of epoch_table are in no fold and are not used.", unused)
    cv = table["fold"].to_numpy() >= 0
    if table.loc[cv, "label"].isna().any():
        raise InputDataError(
            "epoch_table",
            f"{int(table.loc[cv, 'label'].isna().sum())} CV epochs have no label.",
            "re-run data_engineering (it excludes unlabelled epochs).",
        )
    if features is not None:
        features = features.set_index("epoch_id") if "epoch_id" in features.columns else features
        absent = ~table["epoch_id"].isin(features.index)
        if absent.any():
            raise InputDataError(
                "features",
                f"{int(absent.sum())} epochs of `folds` have no feature row (e.g. {table.epoch_id[absent].iloc[0]}).",
                "re-run feature_engineering after data_engineering.",
            )
    data = EpochData(table, class_list(epoch_table), features=features, signals=signals)
    return data, np.flatnonzero(cv), np.flatnonzero(table["fold"].to_numpy() == TEST_FOLD)


@dataclass
class BaseModelResult:
    """One base model after its whole life: OOF result, final model and its test probabilities."""

    name: str
    oof: OOFResult
    final: EpochModel
    test_proba: np.ndarray
    best_params: dict = field(default_factory=dict)
    studies: list[str] = field(default_factory=list)

    def frames(
        self, data: EpochData, cv_rows: np.ndarray, test_rows: np.ndarray
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """OOF and test rows in the predictions contract."""
        oof = prediction_frame(
            data.epoch_ids(cv_rows), data.folds(cv_rows), self.name, self.oof.proba, data.classes
        )
        test = prediction_frame(
            data.epoch_ids(test_rows),
            data.folds(test_rows),
            self.name,
            self.test_proba,
            data.classes,
        )
        return oof, test

    def report(self, data: EpochData, cv_rows: np.ndarray) -> dict:
        degenerate = self.oof.degenerate_folds
        return {
            "model": self.name,
            **scores(data.labels(cv_rows), self.oof.predictions()),
            "best_params": self.best_params,
            "studies": self.studies,
            "degenerate_folds": degenerate,
            "folds": [r.summary() for r in self.oof.folds],
            "final": self.final.report(),
        }

    def timings(self) -> dict[str, list[float]]:
        """Seconds each fold model took to fit and to predict (for MLflow, not the reports)."""
        return {
            "fold_fit_seconds": [r.fit_seconds for r in self.oof.folds],
            "fold_predict_seconds": [r.predict_seconds for r in self.oof.folds],
        }


def fit_base_model(
    name: str,
    build: Callable[[dict], EpochModel],
    data: EpochData,
    cv_rows: np.ndarray,
    test_rows: np.ndarray,
    *,
    search: dict | None = None,
    protocol: str = "nested",
    storage: str = "sqlite:///optuna.db",
    seed: int = 0,
    key: dict | None = None,
    columns: list[str] | None = None,
    executor: Executor | None = None,
    refit_beside_folds: bool = False,
) -> BaseModelResult:
    """Tune (per ``protocol``), cross-validate, refit and predict the test rows with one model.

    ``build(params)`` returns an unfitted model with tuned ``params`` applied; ``key`` (the
    model's settings) and a content hash of the rows name its Optuna studies.
    ``refit_beside_folds``: the refit (and its test predictions) runs on the executor beside the
    fold models instead of after them (the raw-signal models, whose fits are long).
    """
    if protocol not in PROTOCOLS:
        raise InputDataError(
            "evaluation.protocol", f"is {protocol!r}.", f"use one of {list(PROTOCOLS)}."
        )
    make_model, best, studies = _fold_models(
        name, build, data, cv_rows, search, protocol, storage, seed, key, columns
    )
    oof = out_of_fold(
        make_model, data, cv_rows, executor, refit_rows=test_rows if refit_beside_folds else None
    )
    studies += [r.model_report["study"] for r in oof.folds if "study" in r.model_report]
    if oof.degenerate_folds:
        logger.warning(
            "%s predicted one class only in CV folds %s: it is reported and left out of the stack.",
            name,
            oof.degenerate_folds,
        )
    final, test_proba = _final_model(oof, make_model, data, cv_rows, test_rows)
    if isinstance(final, TunedModel):
        best = final.best_params_
        studies.append(final.study_name_)
    result = scores(data.labels(cv_rows), oof.predictions())
    logger.info(
        "%s: OOF macro F1 %.3f, kappa %.3f on %d epochs (%s).",
        name,
        result["macro_f1"],
        result["kappa"],
        len(cv_rows),
        protocol,
    )
    return BaseModelResult(name, oof, final, test_proba, best, list(dict.fromkeys(studies)))


def _fold_models(
    name, build, data, cv_rows, search, protocol, storage, seed, key, columns
) -> tuple[Callable[[], EpochModel], dict, list[str]]:
    """The fold models' factory, the parameters tuned once on all CV folds and that study.

    Nested: a :class:`TunedModel` per fold (it tunes on its own training rows); non-nested: the
    model with the parameters of one search on all CV folds; no search: the model as configured.
    """
    fingerprint = partial(data_fingerprint, columns=columns)
    study_key = {
        "model": name,
        "settings": key or {},
        "space": (search or {}).get("space"),
        "seed": seed,
    }
    if searching(search) and protocol == "nested":
        tuned = partial(TunedModel, name, build, search, storage, seed, study_key, fingerprint)
        return tuned, {}, []
    best, studies = {}, []
    if searching(search):
        rows_key = {**study_key, "rows": fingerprint(data, cv_rows)}
        best, study = tune(name, build, data, cv_rows, search, storage, seed, rows_key)
        studies.append(study)
    return partial(build, best), best, studies


def _final_model(
    oof: OOFResult, make_model: Callable[[], EpochModel], data: EpochData, cv_rows, test_rows
) -> tuple[EpochModel, np.ndarray]:
    """The model refitted on all CV rows and its test probabilities (refitted beside the folds
    when the engine did it already)."""
    if oof.final is not None:
        return oof.final, oof.final_proba
    final = make_model().fit(data, cv_rows)
    if not len(test_rows):
        return final, np.empty((0, len(data.classes)))
    return final, final.predict_proba(data, test_rows)
