"""Classifier heads of the raw-signal base models: the reference implementations' own heads.

Each head copies the head of the library classifier its base model is named after, so the
platform's decisions are the reference's (``tests/models/test_signal_parity.py`` checks it on
real datasets):

- :class:`RidgeHead`: aeon's ROCKET-family head (``MiniRocketClassifier``,
  ``MultiRocketClassifier``, ``HydraClassifier``, ``MultiRocketHydraClassifier``): a scaler,
  then ``RidgeClassifierCV(alphas=np.logspace(-3, 3, 10))``. The stack needs probabilities,
  which a ridge classifier has not: they are ``softmax(decision / T)``, with the temperature
  ``T`` fitted on the leave-one-out decisions of the training rows (the ridge's own efficient
  LOO, at the chosen alpha). A softmax keeps the argmax, so the decisions stay the ridge's.
- :func:`quant_trees`: ``QUANTClassifier``'s extremely randomised trees.
- :class:`Estimator`: any scikit-learn / pyriemann classifier with ``predict_proba``
  (tangent space + logistic regression, MDM, FgMDM, DrCIF).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import RidgeClassifierCV, RidgeCV
from sklearn.preprocessing import LabelBinarizer, StandardScaler

# aeon's ROCKET-family classifiers choose the ridge penalty among these by LOO.
RIDGE_ALPHAS = np.logspace(-3, 3, 10)


class SparseScaler:
    """aeon's scaler of Hydra counts (``HydraClassifier``'s ``_SparseScaler``, private there).

    Delegates to aeon's own class, which works on torch tensors; numpy in, numpy out.
    """

    def fit(self, X: np.ndarray, y=None) -> SparseScaler:
        import torch
        from aeon.classification.convolution_based._hydra import _SparseScaler

        self.scaler_ = _SparseScaler()
        self.scaler_.fit(torch.from_numpy(np.ascontiguousarray(X)))
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        import torch

        return self.scaler_.transform(torch.from_numpy(np.ascontiguousarray(X))).numpy()

    def fit_transform(self, X: np.ndarray, y=None) -> np.ndarray:
        return self.fit(X).transform(X)


class BlockScaler:
    """One scaler per block of feature columns (``MultiRocketHydraClassifier``: Hydra counts
    through :class:`SparseScaler`, MultiRocket features through ``StandardScaler``)."""

    def __init__(self, blocks: list[tuple[int, object]]):
        self.blocks = blocks  # (number of columns, unfitted scaler), in column order

    def _slices(self):
        start = 0
        for width, scaler in self.blocks:
            yield slice(start, start + width), scaler
            start += width

    def fit_transform(self, X: np.ndarray, y=None) -> np.ndarray:
        return np.concatenate([s.fit_transform(X[:, cols]) for cols, s in self._slices()], axis=1)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.concatenate([s.transform(X[:, cols]) for cols, s in self._slices()], axis=1)


def standard_scaler(with_mean: bool) -> StandardScaler:
    return StandardScaler(with_mean=with_mean)


def _logits(decision: np.ndarray) -> np.ndarray:
    """Ridge decisions as one column per class (binary: ``(-d, d)``, as ``predict`` reads them)."""
    decision = np.asarray(decision, dtype=np.float64)
    if decision.ndim == 1:
        return np.column_stack([-decision, decision])
    return decision


def fit_temperature(decision: np.ndarray, codes: np.ndarray) -> float:
    """``T`` minimising the log loss of ``softmax(decision / T)`` against class ``codes``.

    Written here (a one-parameter fit): scikit-learn's temperature scaling is private or tied
    to its own cross-validation, which would refit the ridge again per fold.
    """
    logits = _logits(decision)
    rows = np.arange(len(codes))

    def loss(log_beta: float) -> float:
        return -float(log_softmax(np.exp(log_beta) * logits, axis=1)[rows, codes].mean())

    best = minimize_scalar(loss, bounds=(-10.0, 10.0), method="bounded")
    return float(np.exp(-best.x))


class RidgeHead:
    """``scaler`` then aeon's ``RidgeClassifierCV``; probabilities from a LOO-fitted temperature."""

    def __init__(self, scaler):
        self.scaler = scaler

    def fit(self, X: np.ndarray, y: np.ndarray) -> RidgeHead:
        Z = self.scaler.fit_transform(X)
        self.ridge_ = RidgeClassifierCV(alphas=RIDGE_ALPHAS).fit(Z, y)
        self.classes_ = self.ridge_.classes_
        self.temperature_ = self._loo_temperature(Z, y)
        return self

    def _loo_temperature(self, Z: np.ndarray, y: np.ndarray) -> float:
        """Temperature from the leave-one-out decisions at the chosen alpha (1 when undefined)."""
        codes = np.searchsorted(self.classes_, y)
        if len(y) < 3 or np.bincount(codes).min() < 2:
            return 1.0
        targets = LabelBinarizer(neg_label=-1, pos_label=1).fit_transform(y).astype(np.float64)
        # With a scorer, the GCV stores each row's prediction by the model fitted without it.
        loo = RidgeCV(
            alphas=[float(self.ridge_.alpha_)],
            scoring="neg_mean_squared_error",
            store_cv_results=True,
        ).fit(Z, targets)
        decision = loo.cv_results_[..., 0]
        return fit_temperature(decision[:, 0] if decision.shape[1] == 1 else decision, codes)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.ridge_.decision_function(self.scaler.transform(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.ridge_.predict(self.scaler.transform(X))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return softmax(_logits(self.decision_function(X)) / self.temperature_, axis=1)


def aeon_seed(seed: int) -> int:
    """The ``random_state`` aeon gives a cloned scikit-learn estimator for ``random_state=seed``
    (``aeon.base._base._clone_estimator``, through scikit-learn's ``_set_random_states``)."""
    return int(np.random.RandomState(seed).randint(np.iinfo(np.int32).max))


def quant_trees(params: dict, seed: int) -> ExtraTreesClassifier:
    """``QUANTClassifier``'s default estimator, seeded as aeon seeds it."""
    settings = {"n_estimators": 200, "max_features": 0.1, "criterion": "entropy", **params}
    return ExtraTreesClassifier(random_state=aeon_seed(seed), **settings)


def reference_classifier(kind: str, drcif_trees: int = 50):
    """The library classifier a raw-signal base model is measured against (``random_state=0``):
    aeon's for the ROCKET family, Hydra, QUANT and DrCIF (``drcif_trees`` trees), pyriemann's on
    OAS covariances for the Riemannian models. Used by the parity test and ``benchmarks/uea.py``."""
    from aeon.classification.convolution_based import (
        HydraClassifier,
        MiniRocketClassifier,
        MultiRocketClassifier,
        MultiRocketHydraClassifier,
    )
    from aeon.classification.interval_based import DrCIFClassifier, QUANTClassifier
    from pyriemann.classification import MDM, FgMDM, TSClassifier
    from pyriemann.estimation import Covariances
    from sklearn.pipeline import make_pipeline

    return {
        "minirocket": lambda: MiniRocketClassifier(random_state=0),
        "multirocket": lambda: MultiRocketClassifier(random_state=0),
        "hydra": lambda: HydraClassifier(random_state=0),
        "multirocket_hydra": lambda: MultiRocketHydraClassifier(random_state=0),
        "quant": lambda: QUANTClassifier(random_state=0),
        "drcif": lambda: DrCIFClassifier(n_estimators=drcif_trees, random_state=0),
        "tangent_space": lambda: make_pipeline(Covariances("oas"), TSClassifier()),
        "mdm": lambda: make_pipeline(Covariances("oas"), MDM()),
        "fgmdm": lambda: make_pipeline(Covariances("oas"), FgMDM()),
    }[kind]()
