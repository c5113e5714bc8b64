"""Every raw-signal base model decides as the library classifier it is named after.

On a real dataset shipped in the repo (EyesOpenShut: 56 training / 42 test EEG trials, 14
channels x 128 samples; every method errs on many of its test cases, so equal decisions are
not a matter of all being right), each platform model is fitted through the epoch store
(float32 epochs, chunked reads, the bias sample) with the reference's seed, and its test
decisions must equal those of aeon's / pyriemann's own classifier fitted on the file's float64
values. DrCIF is the exception: its trees split on catch22 features of the values, and the
float32 rounding of the epoch store alone moves 5 of the 42 decisions of aeon's own classifier
(0.43 vs 0.45 accuracy), so its reference is fitted on the same float32 values.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from epochstack.io.uea import read_uea_pair
from epochstack.models.engine import EpochData
from epochstack.models.signal_heads import RidgeHead, reference_classifier, standard_scaler
from epochstack.models.signal_models import SignalModel, transform_rows
from epochstack.signals.epoch_store import write_epoch_store

UEA = Path(__file__).resolve().parents[2] / "data" / "01_raw" / "uea"


def _float64_cases(path: Path):
    """The file's cases as the reference reads them (aeon's loader, float64)."""
    from aeon.datasets import load_from_ts_file

    X, y = load_from_ts_file(str(path))
    return np.stack(X).astype(np.float64), np.asarray(y)


@pytest.fixture(scope="module")
def eyes(tmp_path_factory):
    """EyesOpenShut through the platform's reader and epoch store, plus the reference's arrays."""
    train, test = UEA / "EyesOpenShut_TRAIN.ts", UEA / "EyesOpenShut_TEST.ts"
    cases = read_uea_pair(train, test)
    store = write_epoch_store(
        tmp_path_factory.mktemp("eyes") / "store",
        {c.recording_id: c.epochs for c in cases},
        sfreq=1.0,
        channel_names=cases[0].channel_names,
        channel_types=cases[0].channel_types,
        sfreq_known=False,
    )
    table = pd.DataFrame(
        {
            "epoch_id": [f"{c.recording_id}_000000" for c in cases],
            "recording_id": [c.recording_id for c in cases],
            "subject_id": [c.subject_id for c in cases],
            "signal_row": 0,
            "label": [str(c.labels[0]) for c in cases],
            "fold": [0 if c.source_split == "train" else -1 for c in cases],
        }
    )
    classes = sorted(table.label.unique())
    data = EpochData(table, classes, signals=store)
    return data, _float64_cases(train), _float64_cases(test)


PARAMS = {"drcif": {"n_estimators": 25}, "tangent_space": {"max_iter": 100}}


@pytest.mark.parametrize(
    "kind",
    [
        "minirocket",
        "multirocket",
        "hydra",
        "multirocket_hydra",
        "quant",
        "drcif",
        "tangent_space",
        "mdm",
        "fgmdm",
    ],
)
def test_decisions_equal_the_reference_classifier(eyes, kind):
    data, (X, y), (Xt, yt) = eyes
    train = np.flatnonzero(data.table.fold.to_numpy() == 0)
    test = np.flatnonzero(data.table.fold.to_numpy() == -1)
    # The platform reads the training cases in file order, as the reference does.
    assert (data.labels(train) == y).all() and (data.labels(test) == yt).all()
    params = {**PARAMS.get(kind, {}), "chunk_epochs": 16}  # several chunks per prediction
    model = SignalModel(kind, params, data.classes, seed=0).fit(data, train)
    proba = model.predict_proba(data, test)
    ours = np.asarray(data.classes)[proba.argmax(axis=1)]
    if kind == "drcif":
        X, Xt = X.astype(np.float32).astype(np.float64), Xt.astype(np.float32).astype(np.float64)
    theirs = reference_classifier(kind, drcif_trees=25).fit(X, y).predict(Xt)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert (ours == theirs).all(), f"{kind}: {(ours != theirs).sum()} of {len(yt)} decisions differ"
    # Not a trivially easy set: the reference errs on many test cases.
    assert (theirs != yt).sum() >= 10


def test_ridge_probabilities_keep_the_ridge_decisions_and_are_fitted_out_of_sample():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 400)).astype(np.float32)
    y = np.array(["a", "b", "c"])[rng.integers(0, 3, 60)]
    X[:, :5] += (y == "a")[:, None] * 1.5
    head = RidgeHead(standard_scaler(False)).fit(X, y)
    Xt = rng.normal(size=(30, 400)).astype(np.float32)
    proba = head.predict_proba(Xt)
    assert (head.classes_[proba.argmax(1)] == head.predict(Xt)).all()
    # 400 features for 60 rows: the ridge separates its training rows, but the LOO temperature
    # keeps probabilities of new rows far from certainty.
    assert (head.classes_[head.predict_proba(X).argmax(1)] == y).all()
    assert proba.max(axis=1).mean() < 0.9
    binary = RidgeHead(standard_scaler(False)).fit(X, np.where(y == "a", "a", "rest"))
    assert (
        binary.classes_[binary.predict_proba(Xt).argmax(1)] == binary.predict(Xt)
    ).all() and binary.temperature_ > 0


def test_rocket_biases_fit_on_a_bounded_sample_of_the_training_rows():
    rows = np.arange(10, 2000, 3)
    sample = transform_rows(rows, True, seed=0, cap=512)
    assert len(sample) == 512 and set(sample) <= set(rows) and (np.diff(sample) > 0).all()
    assert (transform_rows(rows[:300], True, 0, 512) == rows[:300]).all()  # all, in order
    assert (transform_rows(rows, False, 0, 512) == rows[:1]).all()  # shape-only transforms
