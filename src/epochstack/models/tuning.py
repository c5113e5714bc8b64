"""Optuna hyper-parameter search on cross-validation folds only, for any :class:`EpochModel`.

Studies live in a database: ``optuna_storage`` (SQLite file by default), or the
``OPTUNA_STORAGE`` environment variable for a server URL with credentials (never a parameter,
so never logged). A study's name fingerprints everything it depends on: the model's settings,
the search space, and a content hash of the rows it tunes on (epoch ids, labels, folds and the
data they read), so changed data or settings start a new study while an unchanged rerun
resumes the old one with the part of its budget not yet finished.

Resume and sharing: trials keep a heartbeat, so a killed process's trial is failed (and retried
with its parameters) by the next process. The sampler draws trial ``n`` of a study from a seed
made of the study's seed, its name and ``n``: trial numbers are unique across every process
sharing the study, so processes started at the same moment draw different parameters, and one
process alone draws the same ones on every run. A trial whose parameters repeat a complete or
running trial (of any process) is pruned at once: a study evaluates each parameter set once.

Nested selection: :class:`TunedModel` runs its study inside ``fit`` on the fitting rows' own
folds, so in an outer CV loop the tuning never sees the outer fold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pandas as pd
import sqlalchemy.exc
from optuna.pruners import MedianPruner
from optuna.samplers import BaseSampler, TPESampler
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from epochstack.errors import InputDataError
from epochstack.models.engine import (
    EpochData,
    EpochModel,
    FoldRecord,
    check_cv_rows,
    out_of_fold,
    scores,
)

logger = logging.getLogger(__name__)
optuna.logging.set_verbosity(
    optuna.logging.WARNING
)  # one summary line per study instead of one per trial

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
STORAGE_ENV = "OPTUNA_STORAGE"
# Seconds a SQLite writer waits for a lock held by another process before failing.
SQLITE_BUSY_TIMEOUT_S = 300
HEARTBEAT_S, GRACE_S = 10, 30

ParamsModel = Callable[[dict], EpochModel]


def resolve_storage(storage: str | None) -> str:
    """The study database: ``$OPTUNA_STORAGE`` when set, else the ``optuna_storage`` parameter.

    A relative SQLite path is made absolute here, so worker processes use the same file.
    """
    url = os.environ.get(STORAGE_ENV) or storage or "sqlite:///optuna.db"
    match = re.match(r"^sqlite:///(?!/)(.+)$", url)
    return f"sqlite:///{Path(match.group(1)).resolve()}" if match else url


def redact(url: str) -> str:
    """A database URL with its password replaced by ``***`` (for logs and MLflow)."""
    return re.sub(r"(://[^/:@\s]+):[^/@\s]*@", r"\1:***@", url)


def digest(payload) -> str:
    """A short, stable hash of JSON-able settings."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[
        :12
    ]


def data_fingerprint(data: EpochData, rows: np.ndarray, columns: list[str] | None = None) -> str:
    """Content hash of what a model learns from: epoch ids, labels and folds of ``rows``, plus the
    feature values of ``columns`` or, without columns, a strided sample of the epoch signals."""
    h = hashlib.sha256()
    table = data.table.iloc[np.asarray(rows)]
    h.update(
        pd.util.hash_pandas_object(table[["epoch_id", "label", "fold"]].astype(str), index=False)
        .to_numpy()
        .tobytes()
    )
    if columns is not None and data.features is not None:
        h.update(
            pd.util.hash_pandas_object(
                data.features.loc[table["epoch_id"].astype(str), columns], index=False
            )
            .to_numpy()
            .tobytes()
        )
    elif data.signals is not None:
        h.update(json.dumps(data.signals.info, sort_keys=True).encode())
        for recording_id in sorted(table["recording_id"].astype(str).unique())[
            :: max(1, table["recording_id"].nunique() // 16)
        ]:
            epochs = data.signals[recording_id]
            h.update(np.ascontiguousarray(epochs[:: max(1, len(epochs) // 8), :, ::7]).tobytes())
    return h.hexdigest()[:16]


def suggest_params(trial: optuna.Trial, space: dict) -> dict:
    """Draw one value per entry of a search space written in parameters.

    Entries: ``{type: float|int, low, high, log}`` or ``{type: categorical, choices: [...]}``.
    """
    params = {}
    for name, spec in (space or {}).items():
        kind = spec.get("type")
        if kind == "float":
            params[name] = trial.suggest_float(
                name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log", False))
            )
        elif kind == "int":
            params[name] = trial.suggest_int(
                name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log", False))
            )
        elif kind == "categorical":
            params[name] = trial.suggest_categorical(name, list(spec["choices"]))
        else:
            raise InputDataError(
                f"search_space.{name}", f"unknown type {kind!r}.", "use float, int or categorical."
            )
    return params


class TrialSeededSampler(BaseSampler):
    """TPE whose draws for trial ``n`` of a study depend only on ``(seed, study name, n)``.

    Written here because Optuna seeds a sampler per process: two processes that open a shared
    study at the same moment, seeded alike, draw the same parameters. A TPE sampler per trial,
    seeded by the trial's number (unique in the study), draws differently in every process and
    reproducibly in one. TPE itself keeps no state between trials (it reads the study).
    """

    def __init__(self, seed: int, n_startup_trials: int):
        self.seed, self.n_startup_trials = int(seed), int(n_startup_trials)
        self._samplers: dict[int, TPESampler] = {}

    def _for(self, study: optuna.Study, trial: FrozenTrial) -> TPESampler:
        if trial.number not in self._samplers:
            seed = int(digest([self.seed, study.study_name, trial.number])[:8], 16)
            self._samplers[trial.number] = TPESampler(
                seed=seed, n_startup_trials=self.n_startup_trials
            )
        return self._samplers[trial.number]

    def before_trial(self, study, trial) -> None:
        self._for(study, trial).before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._for(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._for(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._for(study, trial).sample_independent(
            study, trial, param_name, param_distribution
        )

    def after_trial(self, study, trial, state, values) -> None:
        sampler = self._samplers.pop(trial.number, None)
        if sampler is not None:
            sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to reseed: every trial has its own seed."""


def open_study(
    storage: str,
    study_name: str,
    seed: int,
    pruner: dict | None = None,
    n_startup_trials: int | None = None,
) -> optuna.Study:
    """Create or reopen a maximising study: heartbeat + retry of killed trials, TPE seeded per
    trial (see the module docstring), median pruning."""
    url = resolve_storage(storage)
    engine_kwargs = (
        {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
        if url.startswith("sqlite")
        else {"pool_pre_ping": True}
    )
    pruner = pruner or {}
    for attempt in range(1, 6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore", optuna.exceptions.ExperimentalWarning
                )  # heartbeats are stable enough
                rdb = optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
                )
            study = optuna.create_study(
                study_name=study_name,
                storage=rdb,
                direction="maximize",
                load_if_exists=True,
                pruner=MedianPruner(
                    n_startup_trials=int(pruner.get("n_startup_trials", 2)),
                    n_warmup_steps=int(pruner.get("n_warmup_steps", 1)),
                ),
            )
            break
        except (
            sqlalchemy.exc.IntegrityError,
            sqlalchemy.exc.OperationalError,
            optuna.exceptions.DuplicatedStudyError,
        ):
            # Processes opening a new database at once race to create its schema (Optuna's
            # alembic version row, the tables, the study): the loser retries and finds it made.
            if attempt == 5:
                raise
            time.sleep(0.5 * attempt)
    startup = int(n_startup_trials) if n_startup_trials is not None else 10
    study.sampler = TrialSeededSampler(seed, startup)
    return study


def finished_trials(study: optuna.Study) -> int:
    """Trials already complete or pruned (failed and still-running ones are not counted)."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def prune_if_repeated(trial: optuna.Trial) -> None:
    """Prune a trial at once when another complete or running trial of its study (in any
    process) has its parameters: each parameter set is evaluated once."""
    mine = json.dumps(trial.params, sort_keys=True)
    others = trial.study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)
    )
    if any(
        t.number != trial.number and json.dumps(t.params, sort_keys=True) == mine for t in others
    ):
        raise optuna.TrialPruned("parameters already evaluated or running in another trial")


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
        logger.info(
            "Study %s: its %d trials are already finished; reusing them.",
            study.study_name,
            n_trials,
        )
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        logger.warning(
            "Study %s has no completed trial: default parameters are kept.", study.study_name
        )
        return {}
    return dict(study.best_params)


def cv_objective(
    build: ParamsModel, data: EpochData, rows: np.ndarray, space: dict
) -> Callable[[optuna.Trial], float]:
    """Objective: pooled out-of-fold macro F1 over the folds of ``rows``, pruned after each fold.

    Takes CV rows only: held-out test rows (fold -1) are refused, so tuning cannot see them.
    """
    check_cv_rows(data.folds(rows))
    y = data.labels(rows)

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial, space)
        prune_if_repeated(trial)
        fold_scores: list[float] = []

        def report(step: int, record: FoldRecord) -> None:
            fold_scores.append(record.macro_f1)
            trial.set_user_attr("fold_macro_f1", fold_scores)
            trial.report(float(np.mean(fold_scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        result = out_of_fold(lambda: build(params), data, rows, on_fold=report)
        return scores(y, result.predictions())["macro_f1"]

    return objective


def tune(
    name: str,
    build: ParamsModel,
    data: EpochData,
    rows: np.ndarray,
    search: dict,
    storage: str,
    seed: int,
    key: dict,
) -> tuple[dict, str]:
    """Best parameters of ``build`` on the folds of ``rows`` (and the study's name)."""
    n_trials = int(search.get("n_trials", 0))
    study = open_study(
        storage,
        f"{name}-{digest(key)}",
        seed,
        search.get("pruner"),
        search.get("n_startup_trials", max(2, n_trials // 3)),
    )
    best = run_study(
        study, cv_objective(build, data, rows, search["space"]), n_trials, search.get("timeout_s")
    )
    logger.info(
        "%s: best parameters %s (study %s, %d trials).",
        name,
        best,
        study.study_name,
        finished_trials(study),
    )
    return best, study.study_name


def searching(search: dict | None) -> bool:
    """True when a ``search`` section asks for trials over a non-empty space."""
    return bool(
        search
        and search.get("enabled", True)
        and search.get("space")
        and int(search.get("n_trials", 0)) > 0
    )


class TunedModel(EpochModel):
    """Tunes ``build`` on the fitting rows' own folds (inner CV), then fits the best parameters.

    Used for nested selection: as the model of an outer CV fold, its tuning sees only the
    other outer folds.
    """

    def __init__(
        self,
        name: str,
        build: ParamsModel,
        search: dict,
        storage: str,
        seed: int,
        key: dict,
        fingerprint: Callable[[EpochData, np.ndarray], str],
    ):
        self.name, self.build, self.search, self.storage, self.seed = (
            name,
            build,
            search,
            storage,
            int(seed),
        )
        self.key, self.fingerprint = key, fingerprint

    def fit(self, data: EpochData, rows: np.ndarray) -> TunedModel:
        key = {**self.key, "rows": self.fingerprint(data, rows)}
        self.best_params_, self.study_name_ = tune(
            self.name, self.build, data, rows, self.search, self.storage, self.seed, key
        )
        self.model_ = self.build(self.best_params_).fit(data, rows)
        self.classes = self.model_.classes
        self.seen_epoch_ids = self.model_.seen_epoch_ids
        return self

    def predict_proba(self, data: EpochData, rows: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(data, rows)

    @property
    def reads(self) -> str:
        return self.model_.reads

    def report(self) -> dict:
        return {"best_params": self.best_params_, "study": self.study_name_, **self.model_.report()}


def log_study_to_mlflow(storage: str, study_name: str, prefix: str) -> None:
    """Each finished trial of a study as a nested MLflow run (params, per-fold running score)."""
    if mlflow.active_run() is None:
        return
    study = optuna.load_study(study_name=study_name, storage=resolve_storage(storage))
    for trial in study.get_trials(deepcopy=False, states=FINISHED):
        with mlflow.start_run(run_name=f"{prefix}-trial-{trial.number}", nested=True):
            mlflow.set_tags(
                {
                    "optuna.study": study.study_name,
                    "optuna.trial": trial.number,
                    "optuna.state": trial.state.name,
                }
            )
            mlflow.log_params(trial.params)
            for step, value in sorted(trial.intermediate_values.items()):
                mlflow.log_metric("cv_macro_f1_running", value, step=step)
            if trial.value is not None:
                mlflow.log_metric("oof_macro_f1", trial.value)
