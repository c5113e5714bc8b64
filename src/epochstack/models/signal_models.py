"""Raw-signal base models from the field's libraries, as :class:`EpochModel` objects.

- ``minirocket`` / ``multirocket``: aeon's ROCKET-family random-convolution transforms, then a
  standardised logistic regression (probabilities for the stack);
- ``tangent_space``: pyriemann shrunk covariance matrices mapped to the tangent space of the SPD
  manifold at their Riemannian mean, then a logistic regression.

They read ``epoch_signals`` lazily, ``chunk_epochs`` epochs at a time, so the raw epochs of a
long night are never all in memory; only the transformed features of the fitting rows are.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from epochstack.models.engine import EpochData, EpochModel
from epochstack.models.tabular import align_proba

SIGNAL_MODELS = ("minirocket", "multirocket", "tangent_space")


def read_epochs(data: EpochData, rows: np.ndarray) -> np.ndarray:
    """Raw epochs ``(len(rows), n_channels, n_times)`` of ``rows``, in row order."""
    if data.signals is None:
        raise ValueError("this model reads epoch signals, but none were given")
    table = data.table.iloc[rows]
    out = np.empty(
        (len(rows), len(data.signals.channel_names), data.signals.n_times), dtype=np.float32
    )
    for recording_id, positions in table.groupby("recording_id", sort=False).indices.items():
        signal_rows = table["signal_row"].to_numpy(dtype=np.int64)[positions]
        order = np.argsort(signal_rows)  # ascending reads from the memory map
        out[positions[order]] = data.signals[recording_id][signal_rows[order]]
    return out


def _rocket(kind: str, params: dict, seed: int):
    from aeon.transformations.collection.convolution_based import MiniRocket, MultiRocket

    transform = {"minirocket": MiniRocket, "multirocket": MultiRocket}[kind]
    return transform(random_state=seed, **params)


def _tangent_space(params: dict):
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.pipeline import Pipeline

    return Pipeline(
        [
            ("covariances", Covariances(estimator=params.get("estimator", "oas"))),
            ("tangent_space", TangentSpace(metric=params.get("metric", "riemann"))),
        ]
    )


class SignalModel(EpochModel):
    """A transform of raw epochs (ROCKET family or tangent space) and a logistic regression.

    ``params``: the transform's own settings (e.g. ``n_kernels``; ``estimator`` for the
    covariance shrinkage) plus ``C`` for the classifier and ``chunk_epochs``.
    """

    reads = "signals"

    def __init__(self, kind: str, params: dict | None, classes: list[str], seed: int = 0):
        if kind not in SIGNAL_MODELS:
            raise ValueError(f"unknown signal model {kind!r}; use one of {list(SIGNAL_MODELS)}")
        self.kind = kind
        self.params = dict(params or {})
        self.classes = list(classes)
        self.seed = int(seed)

    def _transform_params(self) -> dict:
        return {k: v for k, v in self.params.items() if k not in ("C", "chunk_epochs", "max_iter")}

    def _features(self, data: EpochData, rows: np.ndarray) -> np.ndarray:
        chunk = int(self.params.get("chunk_epochs", 256))
        parts = [
            self.transform_.transform(read_epochs(data, rows[i : i + chunk]).astype(np.float64))
            for i in range(0, len(rows), chunk)
        ]
        return np.concatenate(parts).astype(np.float32) if parts else np.empty((0, 0), np.float32)

    def fit(self, data: EpochData, rows: np.ndarray) -> SignalModel:
        rows = np.asarray(rows)
        if self.kind == "tangent_space":
            self.transform_ = _tangent_space(self._transform_params())
            self.transform_.fit(read_epochs(data, rows).astype(np.float64))
        else:
            # ROCKET fits its biases on a sample of training series: a bounded read.
            rng = np.random.default_rng(self.seed)
            sample = np.sort(rng.choice(rows, size=min(len(rows), 512), replace=False))
            self.transform_ = _rocket(self.kind, self._transform_params(), self.seed)
            self.transform_.fit(read_epochs(data, sample).astype(np.float64))
        X, y = self._features(data, rows), data.labels(rows)
        # Tangent vectors are already whitened by the reference covariance: standardising each
        # coordinate would inflate the noisy ones (pyriemann's own pipeline has no scaler).
        scaler = [] if self.kind == "tangent_space" else [StandardScaler()]
        self.classifier_ = make_pipeline(
            *scaler,
            LogisticRegression(
                C=float(self.params.get("C", 0.1)), max_iter=int(self.params.get("max_iter", 1000))
            ),
        ).fit(X, y)
        self.seen_epoch_ids = data.epoch_ids(rows)
        return self

    def predict_proba(self, data: EpochData, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        if len(rows) == 0:
            return np.empty((0, len(self.classes)))
        classifier = self.classifier_
        return align_proba(
            classifier.predict_proba(self._features(data, rows)), classifier.classes_, self.classes
        )
