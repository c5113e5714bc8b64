"""Optuna hyperparameter search on cross-validation folds only.

Studies live in a database (``optuna_storage``: SQLite by default, any SQLAlchemy URL to share
one study between processes and machines), are reopened with ``load_if_exists`` and run only
the part of the trial budget not yet finished, so a killed search resumes where it stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import mlflow
import numpy as np
import optuna
import sqlalchemy.exc
from optuna.pruners import MedianPruner
from optuna.samplers import TPESampler
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState
from sklearn.base import BaseEstimator

from epochstack.errors import InputDataError
from epochstack.models.oof import FoldRecord, check_cv_rows, out_of_fold, scores

logger = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Seconds a SQLite writer waits for a lock held by another process before failing.
SQLITE_BUSY_TIMEOUT_S = 300


def suggest_params(trial: optuna.Trial, space: dict) -> dict:
    """Draw one value per entry of a search space written in parameters.

    Entries: ``{type: float|int, low, high, log}`` or ``{type: categorical, choices: [...]}``.
    """
    params = {}
    for name, spec in (space or {}).items():
        kind = spec.get("type")
        if kind == "float":
            params[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log", False)))
        elif kind == "int":
            params[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log", False)))
        elif kind == "categorical":
            params[name] = trial.suggest_categorical(name, list(spec["choices"]))
        else:
            raise InputDataError(f"search_space.{name}", f"unknown type {kind!r}.", "use float, int or categorical.")
    return params


def open_study(storage: str, study_name: str, seed: int, pruner: dict | None = None) -> optuna.Study:
    """Create or reopen a maximising study with a seeded TPE sampler and a median pruner."""
    engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}} if storage.startswith("sqlite") else {"pool_pre_ping": True}
    pruner = pruner or {}
    attempts = 5
    for attempt in range(1, attempts + 1):
        try:
            return optuna.create_study(
                study_name=study_name,
                storage=optuna.storages.RDBStorage(storage, engine_kwargs=engine_kwargs),
                sampler=TPESampler(seed=seed),
                pruner=MedianPruner(n_startup_trials=int(pruner.get("n_startup_trials", 2)), n_warmup_steps=int(pruner.get("n_warmup_steps", 1))),
                direction="maximize",
                load_if_exists=True,
            )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError, optuna.exceptions.DuplicatedStudyError):
            # Processes opening a new database at once race to create its schema (Optuna's
            # alembic version row, the tables, the study): the loser retries and finds it made.
            if attempt == attempts:
                raise
            time.sleep(0.5 * attempt)


def finished_trials(study: optuna.Study) -> int:
    """Trials already complete or pruned (failed and still-running ones are not counted)."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def run_study(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    timeout_s: float | None = None,
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] | None = None,
) -> dict:
    """Run the trials still missing from a budget of ``n_trials``; returns the best parameters.

    ``MaxTrialsCallback`` stops every process sharing the study once the budget is spent.
    """
    remaining = int(n_trials) - finished_trials(study)
    if remaining > 0:
        logger.info("Study %s: running %d of %d trials.", study.study_name, remaining, n_trials)
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=timeout_s,
            callbacks=[MaxTrialsCallback(int(n_trials), states=FINISHED), *(callbacks or [])],
        )
    else:
        logger.info("Study %s: its %d trials are already finished; reusing them.", study.study_name, n_trials)
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        logger.warning("Study %s has no completed trial: default parameters are kept.", study.study_name)
        return {}
    return dict(study.best_params)


def cv_objective(
    build_model: Callable[[dict], BaseEstimator],
    X: np.ndarray,
    y: np.ndarray,
    folds: np.ndarray,
    classes: list[str],
    space: dict,
    imbalance: dict | None = None,
    seed: int = 0,
) -> Callable[[optuna.Trial], float]:
    """Objective: pooled out-of-fold macro F1 over the CV folds, pruned after each fold.

    Takes CV rows only: held-out test rows (fold -1) are refused, so tuning cannot see them.
    """
    check_cv_rows(folds)

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial, space)
        fold_scores: list[float] = []

        def report(step: int, record: FoldRecord) -> None:
            fold_scores.append(record.macro_f1)
            trial.set_user_attr("fold_macro_f1", fold_scores)
            trial.report(float(np.mean(fold_scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        result = out_of_fold(lambda: build_model(params), X, y, folds, classes, imbalance=imbalance, seed=seed, on_fold=report)
        return scores(y, result.predictions())["macro_f1"]

    return objective


def log_trial_to_mlflow(prefix: str) -> Callable[[optuna.Study, FrozenTrial], None]:
    """Optuna callback: each finished trial becomes a nested MLflow run (params, score, folds)."""

    def callback(study: optuna.Study, trial: FrozenTrial) -> None:
        if mlflow.active_run() is None:
            return
        with mlflow.start_run(run_name=f"{prefix}-trial-{trial.number}", nested=True):
            mlflow.set_tags({"optuna.study": study.study_name, "optuna.trial": trial.number, "optuna.state": trial.state.name})
            mlflow.log_params(trial.params)
            for step, value in sorted(trial.intermediate_values.items()):
                mlflow.log_metric("cv_macro_f1_running", value, step=step)
            if trial.value is not None:
                mlflow.log_metric("oof_macro_f1", trial.value)

    return callback
