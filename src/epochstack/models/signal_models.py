"""Raw-signal base models from the field's libraries, as :class:`EpochModel` objects.

Each kind is a transform of raw epochs and a head, both those of the reference implementation
the kind is named after, with its defaults (``tests/models/test_signal_parity.py`` checks that
the decisions equal the reference's on real datasets):

============================  ===============================================================
kind                          reference (transform -> head)
============================  ===============================================================
``minirocket``                aeon ``MiniRocketClassifier`` (MiniRocket -> ridge)
``multirocket``               aeon ``MultiRocketClassifier`` (MultiRocket -> ridge)
``hydra``                     aeon ``HydraClassifier`` (Hydra -> sparse scaler + ridge)
``multirocket_hydra``         aeon ``MultiRocketHydraClassifier`` (both, concatenated -> ridge)
``quant``                     aeon ``QUANTClassifier`` (quantiles of intervals -> extra trees)
``drcif``                     aeon ``DrCIFClassifier`` (an interval forest on the raw epochs)
``tangent_space``             pyriemann ``TSClassifier`` on OAS covariances (logistic regression)
``mdm``, ``fgmdm``            pyriemann ``MDM`` / ``FgMDM`` on OAS covariances
============================  ===============================================================

They read ``epoch_signals`` lazily, ``chunk_epochs`` epochs at a time, so the raw epochs of a
long night are never all in memory; only the transformed features of the fitting rows are
(``drcif``'s "transform" is the identity: it holds its fitting epochs). Where the platform
differs from the reference: ROCKET transforms fit their biases on at most ``fit_sample`` (512)
training epochs, and the epochs are the float32 epoch store's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from epochstack.errors import InputDataError
from epochstack.models import signal_heads as heads
from epochstack.models.engine import EpochData, EpochModel
from epochstack.models.tabular import align_proba

# Settings of every kind, not passed to its transform or head.
COMMON_KEYS = ("chunk_epochs", "fit_sample")


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


class Concatenated:
    """Several transforms side by side (``MultiRocketHydraClassifier``: Hydra, then MultiRocket)."""

    def __init__(self, transforms: list):
        self.transforms = transforms

    def fit(self, X: np.ndarray, y=None) -> Concatenated:
        for transform in self.transforms:
            transform.fit(X)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        parts = [np.asarray(t.transform(X)) for t in self.transforms]
        self.widths_ = [p.shape[1] for p in parts]
        return np.concatenate(parts, axis=1)


def _minirocket(params: dict, seed: int):
    from aeon.transformations.collection.convolution_based import MiniRocket

    return MiniRocket(random_state=seed, **params)


def _multirocket(params: dict, seed: int):
    from aeon.transformations.collection.convolution_based import MultiRocket

    # MultiRocketClassifier's default (the transform's own is 6,250 kernels).
    return MultiRocket(random_state=seed, **{"n_kernels": 10_000, **params})


def _hydra(params: dict, seed: int):
    from aeon.transformations.collection.convolution_based._hydra import HydraTransformer

    return HydraTransformer(random_state=seed, **params)


def _multirocket_hydra(params: dict, seed: int):
    from aeon.transformations.collection.convolution_based import MultiRocket

    # As MultiRocketHydraClassifier: Hydra takes n_kernels / n_groups, MultiRocket its defaults.
    return Concatenated([_hydra(params, seed), MultiRocket(random_state=seed)])


def _quant(params: dict, seed: int):
    from aeon.transformations.collection.interval_based import QUANTTransformer

    return QUANTTransformer(**params)


def _covariances(params: dict, seed: int):
    from pyriemann.estimation import Covariances

    return Covariances(estimator=params.get("estimator", "oas"))


def _identity(params: dict, seed: int):
    from sklearn.preprocessing import FunctionTransformer

    return FunctionTransformer()


def _ridge(scaler: Callable[[], object]) -> Callable:
    return lambda params, seed, transform: heads.RidgeHead(scaler())


def _multirocket_hydra_head(params: dict, seed: int, transform: Concatenated):
    hydra, multirocket = transform.widths_
    return heads.RidgeHead(
        heads.BlockScaler(
            [(hydra, heads.SparseScaler()), (multirocket, heads.standard_scaler(True))]
        )
    )


def _quant_head(params: dict, seed: int, transform):
    return heads.quant_trees(params, seed)


def _drcif_head(params: dict, seed: int, transform):
    from aeon.classification.interval_based import DrCIFClassifier

    return DrCIFClassifier(random_state=seed, n_jobs=1, **params)


def _tangent_space_head(params: dict, seed: int, transform):
    from pyriemann.tangentspace import TangentSpace
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    # pyriemann's TSClassifier (tangent space, then a logistic regression), with no scaler:
    # tangent vectors are already whitened by the reference covariance.
    return make_pipeline(
        TangentSpace(metric=params.get("metric", "riemann")),
        LogisticRegression(
            C=float(params.get("C", 1.0)), max_iter=int(params.get("max_iter", 1000))
        ),
    )


def _mdm_head(params: dict, seed: int, transform):
    from pyriemann.classification import MDM

    return MDM(metric=params.get("metric", "riemann"))


def _fgmdm_head(params: dict, seed: int, transform):
    from pyriemann.classification import FgMDM

    return FgMDM(metric=params.get("metric", "riemann"))


@dataclass(frozen=True)
class SignalKind:
    """A transform of raw epochs and a head; ``transform_keys`` of ``params`` go to the transform,
    the others to the head (``head_keys``: those it takes; None: any keyword of its estimator).
    ``biased``: the transform learns from training epochs (ROCKET biases), else only their shape
    (one epoch is read to fit it)."""

    transform: Callable[[dict, int], object]
    head: Callable[[dict, int, object], object]
    transform_keys: tuple[str, ...]
    head_keys: tuple[str, ...] | None = ()
    biased: bool = False
    # The head fits faster on column-major features (trees read one feature over many rows).
    fortran: bool = False


ROCKET_KEYS = ("n_kernels", "max_dilations_per_kernel", "n_features_per_kernel", "normalise")
KINDS: dict[str, SignalKind] = {
    "minirocket": SignalKind(
        _minirocket, _ridge(lambda: heads.standard_scaler(False)), ROCKET_KEYS, biased=True
    ),
    "multirocket": SignalKind(
        _multirocket, _ridge(lambda: heads.standard_scaler(False)), ROCKET_KEYS, biased=True
    ),
    "hydra": SignalKind(_hydra, _ridge(heads.SparseScaler), ("n_kernels", "n_groups")),
    "multirocket_hydra": SignalKind(
        _multirocket_hydra, _multirocket_hydra_head, ("n_kernels", "n_groups"), biased=True
    ),
    "quant": SignalKind(
        _quant, _quant_head, ("interval_depth", "quantile_divisor"), None, fortran=True
    ),
    "drcif": SignalKind(_identity, _drcif_head, (), None),
    "tangent_space": SignalKind(
        _covariances, _tangent_space_head, ("estimator",), ("metric", "C", "max_iter")
    ),
    "mdm": SignalKind(_covariances, _mdm_head, ("estimator",), ("metric",)),
    "fgmdm": SignalKind(_covariances, _fgmdm_head, ("estimator",), ("metric",)),
}
SIGNAL_MODELS = tuple(KINDS)


def unfit_reason(kind: str, n_channels: int, n_classes: int) -> str | None:
    """Why the reference classifier of ``kind`` cannot be fitted on epochs of this shape (None:
    it can). FgMDM's discriminant filter needs ``n_classes - 1`` tangent-space dimensions, which
    a channel count ``c`` gives only when ``c (c + 1) / 2 >= n_classes - 1``."""
    if kind == "fgmdm" and n_channels * (n_channels + 1) // 2 < n_classes - 1:
        return (
            f"FgMDM's discriminant filter needs {n_classes - 1} tangent-space dimensions for "
            f"{n_classes} classes; {n_channels} channel(s) give {n_channels * (n_channels + 1) // 2}"
        )
    return None


def check_params(kind: str, params: dict, model_name: str) -> None:
    """Refuse settings the kind would ignore (e.g. ``C`` for a ridge head, which picks its own
    penalty by LOO), naming the parameter."""
    spec = KINDS[kind]
    if spec.head_keys is None:
        return
    known = {*COMMON_KEYS, *spec.transform_keys, *spec.head_keys}
    unknown = sorted(set(params) - known)
    if unknown:
        raise InputDataError(
            f"stacking.base_models.{model_name}.params",
            f"has {unknown}, which the {kind} model does not take.",
            f"use only {sorted(known)}.",
        )


def transform_rows(rows: np.ndarray, biased: bool, seed: int, cap: int) -> np.ndarray:
    """Training rows a transform is fitted on: every row up to ``cap`` (ROCKET biases: a seeded
    sample of ``cap`` beyond, so the read stays bounded), one row when it learns only shapes."""
    if not biased:
        return rows[:1]
    if len(rows) <= cap:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=cap, replace=False))


class SignalModel(EpochModel):
    """A reference classifier on raw epochs: ``KINDS[kind]``'s transform, then its head.

    ``params``: the transform's and head's settings (the reference's defaults when absent),
    plus ``chunk_epochs`` (epochs read at a time, 256) and ``fit_sample`` (512).
    """

    reads = "signals"

    def __init__(self, kind: str, params: dict | None, classes: list[str], seed: int = 0):
        if kind not in KINDS:
            raise ValueError(f"unknown signal model {kind!r}; use one of {list(SIGNAL_MODELS)}")
        self.kind = kind
        self.params = dict(params or {})
        self.classes = list(classes)
        self.seed = int(seed)

    def _split_params(self) -> tuple[dict, dict]:
        keys = KINDS[self.kind].transform_keys
        settings = {k: v for k, v in self.params.items() if k not in COMMON_KEYS}
        return (
            {k: v for k, v in settings.items() if k in keys},
            {k: v for k, v in settings.items() if k not in keys},
        )

    def _chunks(self, data: EpochData, rows: np.ndarray):
        """Transformed features of ``rows``, ``chunk_epochs`` epochs at a time."""
        chunk = int(self.params.get("chunk_epochs", 256))
        for i in range(0, len(rows), chunk):
            epochs = read_epochs(data, rows[i : i + chunk]).astype(np.float64)
            yield np.asarray(self.transform_.transform(epochs))

    def _fit_features(self, data: EpochData, rows: np.ndarray, order: str) -> np.ndarray:
        """Features of the fitting rows in one array of memory ``order``, filled chunk by chunk
        (no second copy: on 300 trials of 28 x 1,200 samples QUANT's are 360 MB, and its trees
        fit 2.2x faster on a column-major copy)."""
        chunks = self._chunks(data, rows)
        first = next(chunks)
        X = np.empty((len(rows), *first.shape[1:]), dtype=first.dtype, order=order)
        X[: len(first)] = first
        start = len(first)
        for chunk in chunks:
            X[start : start + len(chunk)] = chunk
            start += len(chunk)
        return X

    def fit(self, data: EpochData, rows: np.ndarray) -> SignalModel:
        rows = np.asarray(rows)
        kind = KINDS[self.kind]
        transform_params, head_params = self._split_params()
        self.transform_ = kind.transform(transform_params, self.seed)
        cap = int(self.params.get("fit_sample", 512))
        fit_rows = transform_rows(rows, kind.biased, self.seed, cap)
        self.transform_.fit(read_epochs(data, fit_rows).astype(np.float64))
        X = self._fit_features(data, rows, "F" if kind.fortran else "C")
        self.head_ = kind.head(head_params, self.seed, self.transform_)
        self.head_.fit(X, data.labels(rows))
        self.seen_epoch_ids = data.epoch_ids(rows)
        return self

    def predict_proba(self, data: EpochData, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        if len(rows) == 0:
            return np.empty((0, len(self.classes)))
        proba = np.concatenate([self.head_.predict_proba(X) for X in self._chunks(data, rows)])
        return align_proba(proba, self.head_.classes_, self.classes)

    def report(self) -> dict:
        """The ridge penalty and softmax temperature chosen (ridge heads)."""
        if isinstance(self.head_, heads.RidgeHead):
            return {
                "alpha": float(self.head_.ridge_.alpha_),
                "temperature": round(self.head_.temperature_, 6),
            }
        return {}
