"""Base models by name: tabular estimators on features, raw-signal models on epoch signals.

Estimators are chosen from this registry by name, never imported from a class path written in
configuration, so a parameters file cannot make the pipeline import arbitrary code. A base model
of ``stacking.base_models`` is ``{estimator: <name>, params, features, imbalance, search}``;
:func:`build_base_model` turns it (plus tuned parameters) into an :class:`EpochModel`.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterable
from functools import partial

from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from epochstack.errors import InputDataError
from epochstack.models.engine import EpochModel
from epochstack.models.signal_models import SIGNAL_MODELS, SignalModel, check_params
from epochstack.models.tabular import TabularModel

EstimatorFactory = Callable[[dict, int, int], BaseEstimator]


def _hgb(params: dict, seed: int, n_jobs: int) -> BaseEstimator:
    # HistGradientBoosting threads through OpenMP and takes no n_jobs.
    return HistGradientBoostingClassifier(random_state=seed, **params)


def _logreg(params: dict, seed: int, n_jobs: int) -> BaseEstimator:
    # Scaling makes the penalty C mean the same for every feature; the imputer covers context
    # features that are undefined at recording edges.
    params = {"max_iter": 500, **params}
    return make_pipeline(
        SimpleImputer(strategy="median"),
        StandardScaler(),
        LogisticRegression(random_state=seed, **params),
    )


def _random_forest(params: dict, seed: int, n_jobs: int) -> BaseEstimator:
    return RandomForestClassifier(random_state=seed, n_jobs=n_jobs, **params)


def _extra_trees(params: dict, seed: int, n_jobs: int) -> BaseEstimator:
    return ExtraTreesClassifier(random_state=seed, n_jobs=n_jobs, **params)


def _lightgbm(params: dict, seed: int, n_jobs: int) -> BaseEstimator:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(random_state=seed, n_jobs=n_jobs, verbose=-1, **params)


ESTIMATORS: dict[str, EstimatorFactory] = {
    "hgb": _hgb,
    "logreg": _logreg,
    "random_forest": _random_forest,
    "extra_trees": _extra_trees,
}
if importlib.util.find_spec("lightgbm") is not None:
    ESTIMATORS["lightgbm"] = _lightgbm

REGISTERED = (*ESTIMATORS, *SIGNAL_MODELS)


def make_estimator(
    kind: str, params: dict | None = None, seed: int = 0, n_jobs: int = 1
) -> BaseEstimator:
    """A fresh, unfitted scikit-learn estimator of the registered ``kind`` with ``params``."""
    if kind not in ESTIMATORS:
        hint = " (install lightgbm)" if kind == "lightgbm" else ""
        raise InputDataError(
            "stacking.base_models.<model>.estimator",
            f"unknown estimator {kind!r}{hint}.",
            f"use one of {sorted(REGISTERED)}.",
        )
    return ESTIMATORS[kind](dict(params or {}), int(seed), int(n_jobs))


def reads_features(spec: dict) -> bool:
    """True for tabular models (feature table), False for raw-signal models (epoch signals)."""
    return spec.get("estimator") not in SIGNAL_MODELS


def build_base_model(
    name: str,
    spec: dict,
    classes: list[str],
    *,
    tuned: dict | None = None,
    columns: list[str] | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    imbalance: dict | None = None,
) -> EpochModel:
    """An unfitted base model: ``spec['params']`` updated with ``tuned`` values."""
    kind = spec.get("estimator")
    params = {**(spec.get("params") or {}), **(tuned or {})}
    if kind in SIGNAL_MODELS:
        check_params(kind, params, name)
        return SignalModel(kind, params, classes, seed)
    if kind not in ESTIMATORS:
        raise InputDataError(
            f"stacking.base_models.{name}.estimator",
            f"unknown estimator {kind!r}.",
            f"use one of {sorted(REGISTERED)}.",
        )
    if columns is None:
        raise ValueError(f"{name}: a tabular model needs its feature columns")
    return TabularModel(
        partial(make_estimator, kind, params, seed, n_jobs), columns, classes, imbalance, seed
    )


def select_features(
    columns: Iterable[str], spec: dict | None, model_name: str = "<model>"
) -> list[str]:
    """Feature columns a model reads, in table order.

    ``spec`` keys (all optional): ``include`` (regexes, a column is kept when one matches),
    ``families`` (feature families, shorthand for the regex ``(^|_)<family>(_|$)``) and
    ``exclude`` (regexes removing columns). No ``include``/``families``: every column.
    """
    spec = spec or {}
    columns = [c for c in columns if c != "epoch_id"]
    include = list(spec.get("include") or []) + [
        rf"(^|_){re.escape(f)}(_|$)" for f in spec.get("families") or []
    ]
    exclude = list(spec.get("exclude") or [])
    chosen = [c for c in columns if not include or any(re.search(p, c) for p in include)]
    chosen = [c for c in chosen if not any(re.search(p, c) for p in exclude)]
    if not chosen:
        raise InputDataError(
            f"stacking.base_models.{model_name}.features",
            f"selects no column of the feature table ({len(columns)} columns, e.g. {columns[:3]}).",
            "fix the include/families/exclude patterns.",
        )
    return chosen


def enabled_models(block: dict, section: str, catalogue_key: str) -> list[str]:
    """Names in ``<section>.enabled``, each checked to be defined under ``<section>.<catalogue_key>``."""
    names = list(block.get("enabled") or [])
    unknown = [n for n in names if n not in (block.get(catalogue_key) or {})]
    if unknown:
        raise InputDataError(
            f"{section}.enabled",
            f"names {unknown}, which {section}.{catalogue_key} does not define.",
            f"define them under {section}.{catalogue_key} or choose among {sorted(block.get(catalogue_key) or {})}.",
        )
    if len(set(names)) != len(names):
        raise InputDataError(
            f"{section}.enabled", f"lists a model twice: {names}.", "list each model once."
        )
    return names
