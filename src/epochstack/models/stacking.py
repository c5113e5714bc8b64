"""The stack: a combination of base-model probabilities, chosen by cross-validation.

The stack's input is a table of base-model out-of-fold probabilities (columns
``<model>|proba_<class>``). Candidates are every base model alone, a non-negative weighted
average of their probabilities (weights fitted by minimising log loss), a regularised
multinomial logistic regression on them and, when listed, HIVE-COTE 2's CAWPE ensemble (each
base model's probabilities weighted by its cross-validated accuracy to the power 4).
:class:`SelectedStack` scores every candidate by cross-validation over the folds of the rows it
is fitted on (macro F1, then kappa, then the lower log loss, which separates models that all
decide right), then chooses by one of two rules (:func:`choose`):

- ``noise_z`` unset (``conf/base``): the best single base model, unless a combination beats it by
  ``margin`` macro F1 and is at least as good in every one of those folds (small gains in a
  pooled score are often noise). The stack is never worse than its best base model in CV.
- ``noise_z`` set (``conf/uea``): the candidates that CV cannot separate from the best one (a
  paired sign test on the cases where exactly one of the two is right: the best must get
  ``noise_z`` standard deviations more of them right) are all plausible winners; among them the
  stack takes a combination before a single base model, and of those the one with the lowest
  CV **log loss**. A pooled lead of a few cases on a few hundred trials does not survive a TEST
  file of other sessions, so the stack does not bet on one model (issue 19's set A, where every
  model is right everywhere in CV); log loss reads every case's probability, not only which
  side of 0.5 it fell, so it separates what accuracy on a few dozen cases cannot, and it
  penalises a combiner that fitted its folds with overconfident weights.

Used inside the out-of-fold engine, the choice is made again in every outer fold on the other
folds only, so the stack's own OOF score is not inflated by the choice.

Base models whose CV behaviour cannot be trusted (a fold model that predicted one class while its
epochs held several) are left out of the candidates and reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from epochstack.errors import InputDataError
from epochstack.models.engine import EpochData, EpochModel, out_of_fold, scores
from epochstack.models.labels import proba_columns
from epochstack.models.tabular import align_proba

logger = logging.getLogger(__name__)

SEPARATOR = "|"
COMBINERS = ("weighted_average", "logistic", "cawpe")
# Combiners when stacking.stack.combiners is not given (cawpe only when listed).
DEFAULT_COMBINERS = ["weighted_average", "logistic"]


def meta_columns(model: str, classes: list[str]) -> list[str]:
    """Columns of one base model's probabilities in the stack's input table."""
    return [f"{model}{SEPARATOR}{c}" for c in proba_columns(classes)]


def meta_table(probabilities: dict[str, np.ndarray], epoch_ids, classes: list[str]) -> pd.DataFrame:
    """The stack's input: every base model's probabilities side by side, indexed by epoch id."""
    blocks = [pd.DataFrame(p, columns=meta_columns(m, classes)) for m, p in probabilities.items()]
    table = pd.concat(blocks, axis=1) if blocks else pd.DataFrame(index=range(len(epoch_ids)))
    table.index = pd.Index(np.asarray(epoch_ids, dtype=str), name="epoch_id")
    return table


def _model_probabilities(data: EpochData, rows: np.ndarray, models: list[str]) -> np.ndarray:
    """``(n_models, len(rows), n_classes)`` base probabilities, rows renormalised to sum to 1."""
    stack = np.stack([data.feature_matrix(rows, meta_columns(m, data.classes)) for m in models])
    return stack / np.clip(stack.sum(axis=-1, keepdims=True), 1e-12, None)


class SingleModel(EpochModel):
    """The stack as one base model's own probabilities."""

    def __init__(self, model: str, classes: list[str]):
        self.model, self.classes = model, list(classes)

    def fit(self, data: EpochData, rows: np.ndarray) -> SingleModel:
        self.seen_epoch_ids = data.epoch_ids(rows)
        return self

    def predict_proba(self, data: EpochData, rows: np.ndarray) -> np.ndarray:
        return _model_probabilities(data, rows, [self.model])[0]

    @property
    def models(self) -> list[str]:
        return [self.model]

    def report(self) -> dict:
        return {"combiner": "single", "model": self.model}


class WeightedAverage(EpochModel):
    """Convex combination ``sum_m w_m p_m`` (``w >= 0``, ``sum w = 1``) minimising log loss.

    Written here: no library fits simplex weights of probability forecasts; a softmax
    parametrisation turns it into a smooth unconstrained problem for L-BFGS.
    """

    def __init__(self, models: list[str], classes: list[str], l2: float = 1e-3):
        self.all_models, self.classes, self.l2 = list(models), list(classes), float(l2)

    def fit(self, data: EpochData, rows: np.ndarray) -> WeightedAverage:
        probas = _model_probabilities(data, rows, self.all_models)
        truth = pd.Categorical(data.labels(rows), categories=self.classes).codes
        picked = np.clip(probas[:, np.arange(len(rows)), truth], 1e-12, 1.0)  # (n_models, n_rows)

        def loss(theta):
            w = softmax(theta)
            mixed = np.clip(w @ picked, 1e-12, None)
            grad_w = -(picked / mixed).mean(axis=1)
            value = -np.log(mixed).mean() + self.l2 * np.sum(theta**2)
            return value, w * (grad_w - w @ grad_w) + 2 * self.l2 * theta

        theta = minimize(loss, np.zeros(len(self.all_models)), jac=True, method="L-BFGS-B").x
        self.weights_ = dict(zip(self.all_models, softmax(theta).round(6).tolist(), strict=True))
        self.seen_epoch_ids = data.epoch_ids(rows)
        return self

    @property
    def models(self) -> list[str]:
        return [m for m, w in self.weights_.items() if w > 1e-4]

    def predict_proba(self, data: EpochData, rows: np.ndarray) -> np.ndarray:
        w = np.array([self.weights_[m] for m in self.models])
        return np.tensordot(w / w.sum(), _model_probabilities(data, rows, self.models), axes=1)

    def report(self) -> dict:
        return {"combiner": "weighted_average", "weights": self.weights_}


class LogisticStack(EpochModel):
    """Standardised multinomial logistic regression on the base probabilities (strong L2)."""

    def __init__(self, models: list[str], classes: list[str], C: float = 0.1, seed: int = 0):
        self.all_models, self.classes, self.C, self.seed = (
            list(models),
            list(classes),
            float(C),
            int(seed),
        )

    @property
    def models(self) -> list[str]:
        return self.all_models

    def _X(self, data: EpochData, rows: np.ndarray) -> np.ndarray:
        return data.feature_matrix(
            rows, [c for m in self.all_models for c in meta_columns(m, self.classes)]
        )

    def fit(self, data: EpochData, rows: np.ndarray) -> LogisticStack:
        self.estimator_ = make_pipeline(
            StandardScaler(), LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
        )
        self.estimator_.fit(self._X(data, rows), data.labels(rows))
        self.seen_epoch_ids = data.epoch_ids(rows)
        return self

    def predict_proba(self, data: EpochData, rows: np.ndarray) -> np.ndarray:
        return align_proba(
            self.estimator_.predict_proba(self._X(data, rows)),
            self.estimator_.classes_,
            self.classes,
        )

    def report(self) -> dict:
        return {"combiner": "logistic", "C": self.C}


class CAWPE(EpochModel):
    """HIVE-COTE 2's ensemble: ``sum_m w_m p_m / sum_m w_m`` with ``w_m = accuracy_m ** alpha``.

    ``accuracy_m`` is base model ``m``'s accuracy on the fitting rows, whose probabilities are
    out-of-fold: HIVE-COTE's train-CV estimate. Written here: aeon's ``ClassifierEnsemble``
    fits its members itself, and the stack's members are fitted already.
    """

    def __init__(self, models: list[str], classes: list[str], alpha: float = 4.0):
        self.all_models, self.classes, self.alpha = list(models), list(classes), float(alpha)

    def fit(self, data: EpochData, rows: np.ndarray) -> CAWPE:
        probas = _model_probabilities(data, rows, self.all_models)
        truth = pd.Categorical(data.labels(rows), categories=self.classes).codes
        accuracy = (probas.argmax(axis=-1) == truth).mean(axis=1)
        weights = accuracy**self.alpha
        weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(weights), 1.0)
        self.weights_ = dict(zip(self.all_models, weights.round(6).tolist(), strict=True))
        self.seen_epoch_ids = data.epoch_ids(rows)
        return self

    @property
    def models(self) -> list[str]:
        return [m for m, w in self.weights_.items() if w > 0]

    def predict_proba(self, data: EpochData, rows: np.ndarray) -> np.ndarray:
        w = np.array([self.weights_[m] for m in self.models])
        return np.tensordot(w / w.sum(), _model_probabilities(data, rows, self.models), axes=1)

    def report(self) -> dict:
        return {"combiner": "cawpe", "alpha": self.alpha, "weights": self.weights_}


@dataclass
class Candidate:
    name: str
    model: EpochModel
    macro_f1: float = float("nan")
    kappa: float = float("nan")
    log_loss: float = float("nan")
    fold_macro_f1: list[float] = field(default_factory=list)
    correct: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def rank(self) -> tuple[float, float, float]:
        """Macro F1, then kappa, then (lower) log loss: ties in the decisions (common on small,
        easy data, where every model is right) go to the better probabilities."""
        return self.macro_f1, self.kappa, -self.log_loss

    def beats(self, other: Candidate, margin: float) -> bool:
        """Better pooled score by ``margin`` and no worse in any fold."""
        no_worse = all(a >= b for a, b in zip(self.fold_macro_f1, other.fold_macro_f1, strict=True))
        return self.macro_f1 >= other.macro_f1 + margin and no_worse

    def separated_from(self, other: Candidate, z: float) -> bool:
        """More cases right than ``other`` beyond noise: of the ``b + c`` cases where exactly one
        of the two is right (``b`` this one), the surplus ``b - c`` exceeds ``z`` standard
        deviations of a fair coin's (a sign / McNemar test, ``b - c > z * sqrt(b + c)``)."""
        b = int((self.correct & ~other.correct).sum())
        c = int((~self.correct & other.correct).sum())
        return b - c > z * np.sqrt(b + c)


def _candidates(
    models: list[str], classes: list[str], settings: dict, seed: int
) -> list[Candidate]:
    out = [Candidate(m, SingleModel(m, classes)) for m in models]
    if len(models) > 1:
        combiners = settings.get("combiners", DEFAULT_COMBINERS)
        unknown = sorted(set(combiners) - set(COMBINERS))
        if unknown:
            raise InputDataError(
                "stacking.stack.combiners",
                f"names unknown combiners {unknown}.",
                f"use a subset of {list(COMBINERS)}.",
            )
        if "cawpe" in combiners:
            out.append(Candidate("cawpe", CAWPE(models, classes, settings.get("cawpe_alpha", 4.0))))
        if "weighted_average" in combiners:
            out.append(Candidate("weighted_average", WeightedAverage(models, classes)))
        if "logistic" in combiners:
            out += [
                Candidate(f"logistic(C={c:g})", LogisticStack(models, classes, c, seed))
                for c in settings.get("logistic_C", [0.01, 0.1, 1.0])
            ]
    return out


def _score(candidate: Candidate, data: EpochData, rows: np.ndarray) -> None:
    """Cross-validated macro F1 / kappa over the folds of ``rows`` (in-sample with one fold)."""
    y = data.labels(rows)
    if np.unique(data.folds(rows)).size >= 2:
        oof = out_of_fold(lambda: candidate.model, data, rows)
        proba, candidate.fold_macro_f1 = oof.proba, [r.macro_f1 for r in oof.folds]
    else:
        proba = candidate.model.fit(data, rows).predict_proba(data, rows)
    decided = np.asarray(data.classes, dtype=object)[proba.argmax(axis=1)]
    result = scores(y, decided)
    candidate.macro_f1, candidate.kappa = result["macro_f1"], result["kappa"]
    candidate.correct = decided == y
    candidate.log_loss = float(log_loss(y, np.clip(proba, 1e-12, 1.0), labels=data.classes))


def choose(candidates: list[Candidate], base_models: list[str], settings: dict) -> Candidate:
    """The candidate the stack becomes (see the module docstring).

    Without ``noise_z``: the best single base model, unless a combination beats it by
    ``margin`` and in every fold. With ``noise_z``: among the candidates that CV cannot
    separate from the best (:meth:`Candidate.separated_from`), a combination before a single
    model, and of those the lowest CV log loss.
    """
    margin = float(settings.get("margin", 0.005))
    singles = [c for c in candidates if c.name in base_models]
    best_single = max(singles, key=Candidate.rank)
    if settings.get("noise_z") is None:
        better = [
            c for c in candidates if c.name not in base_models and c.beats(best_single, margin)
        ]
        return max(better, key=Candidate.rank) if better else best_single
    z = float(settings["noise_z"])
    best = max(candidates, key=Candidate.rank)
    tied = [c for c in candidates if not best.separated_from(c, z)]
    combinations = [c for c in tied if c.name not in base_models]
    return min(combinations or tied, key=lambda c: (c.log_loss, tuple(-r for r in c.rank())))


def scored_candidates(
    models: list[str], classes: list[str], settings: dict, seed: int, data: EpochData, rows
) -> list[Candidate]:
    """Every candidate of the stack on ``models``, scored by CV over the folds of ``rows``."""
    candidates = _candidates(models, classes, settings, seed)
    for candidate in candidates:
        _score(candidate, data, rows)
    return candidates


class SelectedStack(EpochModel):
    """Chooses among the candidates by CV on its fitting rows (see the module docstring)."""

    def __init__(
        self, models: list[str], classes: list[str], settings: dict | None = None, seed: int = 0
    ):
        self.base_models, self.classes = list(models), list(classes)
        self.settings, self.seed = dict(settings or {}), int(seed)

    def fit(self, data: EpochData, rows: np.ndarray) -> SelectedStack:
        candidates = scored_candidates(
            self.base_models, self.classes, self.settings, self.seed, data, rows
        )
        chosen = choose(candidates, self.base_models, self.settings)
        self.selected_ = chosen.name
        self.model_ = chosen.model.fit(data, rows)
        self.scores_ = {
            c.name: {
                "macro_f1": round(c.macro_f1, 4),
                "kappa": round(c.kappa, 4),
                "log_loss": round(c.log_loss, 4),
            }
            for c in candidates
        }
        self.seen_epoch_ids = data.epoch_ids(rows)
        return self

    @property
    def models(self) -> list[str]:
        """The base models whose probabilities the chosen stack reads."""
        return list(self.model_.models)

    def predict_proba(self, data: EpochData, rows: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(data, rows)

    def report(self) -> dict:
        return {"selected": self.selected_, **self.model_.report(), "candidates": self.scores_}


@dataclass
class StackedModel:
    """What inference runs: fitted base models (all kinds) and the fitted stack on their output."""

    classes: list[str]
    base_models: dict[str, EpochModel]
    stack: SelectedStack
    reads: dict[str, str] = field(default_factory=dict)  # model -> "features" | "signals"

    @property
    def base_model_order(self) -> list[str]:
        return list(self.base_models)

    @property
    def required_models(self) -> list[str]:
        return self.stack.models

    def base_probabilities(
        self, data: EpochData, models: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        rows = np.arange(len(data.table))
        return {
            m: self.base_models[m].predict_proba(data, rows)
            for m in (models or self.required_models)
        }

    def predict_proba(self, data: EpochData) -> np.ndarray:
        """Stacked probabilities for every row of ``data.table`` (columns in ``classes`` order)."""
        probabilities = self.base_probabilities(data)
        ids = data.epoch_ids(np.arange(len(data.table)))
        meta = EpochData(
            data.table, self.classes, features=meta_table(probabilities, ids, self.classes)
        )
        return self.stack.predict_proba(meta, np.arange(len(data.table)))
