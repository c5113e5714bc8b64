"""The one out-of-fold engine, for every kind of model (tabular, raw-signal, deep, the stack).

A model is an :class:`EpochModel`: ``fit(data, rows)`` and ``predict_proba(data, rows)`` on row
positions of an :class:`EpochData` (the epoch table with labels and folds, plus the features
and/or the lazily read epoch signals a model needs). :func:`out_of_fold` fits one model per CV
fold on the other folds and predicts that fold; it refuses held-out test rows (fold -1) and
checks, fold by fold, that no predicted epoch was among the epochs the model was fitted on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score, f1_score

from epochstack.execution import Executor
from epochstack.models.labels import proba_columns
from epochstack.signals.epoch_store import EpochStore

TEST_FOLD = -1


@dataclass
class EpochData:
    """Everything a model may read about a set of epochs.

    ``table``: one row per epoch (``epoch_id, recording_id, subject_id, signal_row, label, fold``),
    in a fixed order that row positions refer to. ``features``: numeric columns indexed by
    ``epoch_id`` (a feature table, or base-model probabilities for the stack). ``signals``: the
    epoch store, read lazily.
    """

    table: pd.DataFrame
    classes: list[str]
    features: pd.DataFrame | None = None
    signals: EpochStore | None = None

    def __post_init__(self):
        self.table = self.table.reset_index(drop=True)

    def labels(self, rows: np.ndarray) -> np.ndarray:
        return self.table["label"].to_numpy(dtype=object)[rows].astype(str)

    def folds(self, rows: np.ndarray) -> np.ndarray:
        return self.table["fold"].to_numpy(dtype=np.int64)[rows]

    def epoch_ids(self, rows: np.ndarray) -> np.ndarray:
        return self.table["epoch_id"].to_numpy(dtype=object)[rows].astype(str)

    def feature_matrix(self, rows: np.ndarray, columns: list[str]) -> np.ndarray:
        if self.features is None:
            raise ValueError("this model reads features, but none were given")
        return self.features.loc[self.epoch_ids(rows), columns].to_numpy(dtype=np.float64)


class EpochModel:
    """Interface of every model: fit on some rows of an :class:`EpochData`, predict others.

    ``predict_proba`` returns ``(len(rows), len(classes))`` probabilities in class order.
    ``seen_epoch_ids`` are the epochs the fitted model learned from (training and early-stopping
    epochs alike): the engine checks them against the epochs it predicts.
    """

    classes: list[str]
    seen_epoch_ids: np.ndarray
    reads = "features"  # what predict_proba needs: "features" or "signals"

    def fit(self, data: EpochData, rows: np.ndarray) -> EpochModel:  # pragma: no cover - interface
        raise NotImplementedError

    def predict_proba(self, data: EpochData, rows: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def report(self) -> dict:
        """What a person wants to know about the fitted model (chosen parameters, weights...)."""
        return {}


ModelFactory = Callable[[], EpochModel]


@dataclass
class FoldRecord:
    """What one fold of the OOF loop fitted on, predicted, how long it took, how it scored."""

    fold: int
    fit_epoch_ids: np.ndarray
    predicted_epoch_ids: np.ndarray
    fit_seconds: float
    predict_seconds: float
    macro_f1: float
    degenerate: bool = False  # predicted one class only while its epochs hold several
    model_report: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """What the fold fitted and how it scored (a result: no timings, see ``timings``)."""
        return {
            "fold": self.fold,
            "n_fit": len(self.fit_epoch_ids),
            "n_predicted": len(self.predicted_epoch_ids),
            "macro_f1": self.macro_f1,
            "degenerate": self.degenerate,
            **({"model": self.model_report} if self.model_report else {}),
        }


@dataclass
class OOFResult:
    """Out-of-fold class probabilities ``(n_rows, n_classes)`` in input row order."""

    proba: np.ndarray
    classes: list[str]
    folds: list[FoldRecord] = field(default_factory=list)
    # With ``refit_rows``: the model fitted on all rows, and its probabilities of those rows.
    final: EpochModel | None = None
    final_proba: np.ndarray | None = None

    def predictions(self) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)[self.proba.argmax(axis=1)]

    @property
    def degenerate_folds(self) -> list[int]:
        return [r.fold for r in self.folds if r.degenerate]


def scores(y_true, y_pred) -> dict[str, float]:
    """Macro F1 and Cohen's kappa: the selection criteria of tuning and stacking."""
    return {
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "kappa": float(np.nan_to_num(cohen_kappa_score(y_true, y_pred))),
    }


def check_cv_rows(folds: np.ndarray) -> None:
    """Refuse held-out test rows (fold -1) and single-fold inputs."""
    folds = np.asarray(folds)
    if (folds < 0).any():
        raise ValueError(
            f"{int((folds < 0).sum())} held-out test rows (fold -1) reached cross-validation code; "
            "only CV rows (fold >= 0) may be passed here."
        )
    if np.unique(folds).size < 2:
        raise ValueError(
            f"cross-validation needs at least 2 folds, got {np.unique(folds).tolist()}."
        )


def _fit_and_predict(
    make_model: ModelFactory, data: EpochData, rows: np.ndarray, fold: int
) -> tuple[np.ndarray, FoldRecord]:
    """One fold: fit on ``rows`` outside ``fold``, predict ``rows`` inside it."""
    folds = data.folds(rows)
    fit_rows, held_out = rows[folds != fold], rows[folds == fold]
    start = time.perf_counter()
    model = make_model().fit(data, fit_rows)
    fitted = time.perf_counter()
    proba = model.predict_proba(data, held_out)
    predicted = time.perf_counter()
    predicted_ids = data.epoch_ids(held_out)
    seen = getattr(model, "seen_epoch_ids", data.epoch_ids(fit_rows))
    if np.intersect1d(np.asarray(seen, dtype=str), predicted_ids).size:
        raise AssertionError(f"fold {fold}: epochs both fitted and predicted (leakage).")
    truth, decided = (
        data.labels(held_out),
        np.asarray(data.classes, dtype=object)[proba.argmax(axis=1)],
    )
    record = FoldRecord(
        int(fold),
        data.epoch_ids(fit_rows),
        predicted_ids,
        fitted - start,
        predicted - fitted,
        scores(truth, decided)["macro_f1"],
        bool(len(set(truth)) > 1 and len(set(decided)) == 1),
        model.report(),
    )
    return proba, record


def _refit_and_predict(
    make_model: ModelFactory, data: EpochData, rows: np.ndarray, predict_rows: np.ndarray
) -> tuple[EpochModel, np.ndarray]:
    """The final model: fitted on every row of ``rows``; its probabilities of ``predict_rows``."""
    model = make_model().fit(data, rows)
    if len(predict_rows) == 0:
        return model, np.empty((0, len(data.classes)))
    return model, model.predict_proba(data, predict_rows)


def _task(fold_task: Callable, refit_task: Callable, item: int | None):
    return refit_task() if item is None else fold_task(item)


def out_of_fold(
    make_model: ModelFactory,
    data: EpochData,
    rows: np.ndarray,
    executor: Executor | None = None,
    on_fold: Callable[[int, FoldRecord], None] | None = None,
    refit_rows: np.ndarray | None = None,
) -> OOFResult:
    """Fit on all folds but one, predict that one, for every CV fold among ``rows``.

    Folds run on ``executor`` (in parallel) when given, else one after the other in this
    process, with ``on_fold(step, record)`` after each (Optuna reports and prunes there).
    With ``refit_rows`` (e.g. the held-out test rows, never among ``rows``), a final model is
    also fitted on all ``rows`` and predicts ``refit_rows``, as one more task beside the folds
    (first, as the longest): ``result.final`` and ``result.final_proba``.
    """
    rows = np.asarray(rows)
    folds = data.folds(rows)
    check_cv_rows(folds)
    fold_ids = [int(f) for f in np.unique(folds)]
    proba = np.full((len(rows), len(data.classes)), np.nan)
    result = OOFResult(proba=proba, classes=list(data.classes))
    task, items = partial(_fit_and_predict, make_model, data, rows), list(fold_ids)
    if refit_rows is not None:
        refit_rows = np.asarray(refit_rows, dtype=np.int64)
        if np.intersect1d(refit_rows, rows).size or on_fold is not None:
            raise ValueError("refit_rows must be outside the CV rows, and without on_fold.")
        task = partial(_task, task, partial(_refit_and_predict, make_model, data, rows, refit_rows))
        items.insert(0, None)
    outcomes = _run(task, items, executor, on_fold)
    if refit_rows is not None:
        result.final, result.final_proba = outcomes.pop(0)
    for fold, (fold_proba, record) in zip(fold_ids, outcomes, strict=True):
        proba[folds == fold] = fold_proba
        result.folds.append(record)
    return result


def _run(task: Callable, items: list, executor: Executor | None, on_fold) -> list:
    """``task`` of every item, on the executor or in this process with ``on_fold`` after each."""
    if executor is not None and on_fold is None:
        return executor.map(task, items, desc="folds")
    outcomes = []
    for step, item in enumerate(items):
        outcomes.append(task(item))
        if on_fold is not None:
            on_fold(step, outcomes[-1][1])
    return outcomes


def prediction_frame(
    epoch_ids, fold, model: str, proba: np.ndarray, classes: list[str]
) -> pd.DataFrame:
    """The predictions contract: ``epoch_id, fold, model, proba_<class>..., pred``."""
    proba = np.asarray(proba, dtype=np.float64).reshape(len(epoch_ids), len(classes))
    frame = pd.DataFrame(
        {
            "epoch_id": np.asarray(epoch_ids, dtype=object),
            "fold": np.asarray(fold, dtype=np.int64),
            "model": model,
        }
    )
    frame[proba_columns(classes)] = proba
    frame["pred"] = np.asarray(classes, dtype=object)[proba.argmax(axis=1)] if len(proba) else []
    return frame.astype({"epoch_id": "string", "model": "string", "pred": "string"})
