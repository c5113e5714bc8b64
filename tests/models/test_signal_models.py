"""Raw-signal base models (aeon ROCKET family, pyriemann tangent space) through the one OOF engine."""

import numpy as np
import pandas as pd
import pytest

from epochstack.models.engine import EpochData, out_of_fold, scores
from epochstack.models.signal_models import SignalModel, read_epochs, unfit_reason
from epochstack.signals.epoch_store import write_epoch_store

CLASSES = ["left", "right"]


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    """48 single-epoch recordings of 3 channels x 40 samples: the class sets which channel carries a burst."""
    rng = np.random.default_rng(0)
    epochs, rows = {}, []
    for i in range(48):
        label = i % 2
        x = rng.normal(0, 1, (1, 3, 40)).astype(np.float32)
        x[0, label, 10:30] += 3 * np.sin(np.linspace(0, 6 * np.pi, 20))
        rid = f"case_{i:03d}"
        epochs[rid] = x
        rows.append(
            {
                "epoch_id": f"{rid}_000000",
                "recording_id": rid,
                "subject_id": rid,
                "signal_row": 0,
                "label": CLASSES[label],
                "fold": -1 if i >= 40 else i % 4,
            }
        )
    store = write_epoch_store(
        tmp_path_factory.mktemp("trials") / "s",
        epochs,
        sfreq=1.0,
        channel_names=["a", "b", "c"],
        channel_types=["misc"] * 3,
        sfreq_known=False,
    )
    return EpochData(pd.DataFrame(rows), CLASSES, signals=store)


def test_epochs_are_read_in_row_order(trials):
    rows = np.array([5, 2, 7])
    expected = np.stack([trials.signals[trials.table.recording_id[r]][0] for r in rows])
    np.testing.assert_array_equal(read_epochs(trials, rows), expected)


@pytest.mark.parametrize(
    ("kind", "params"),
    [("tangent_space", {"C": 1.0}), ("minirocket", {"n_kernels": 84}), ("quant", {})],
)
def test_oof_never_predicts_an_epoch_its_fold_model_fitted(trials, kind, params):
    cv = np.flatnonzero(trials.table.fold.to_numpy() >= 0)
    fitted = []

    def make():
        fitted.append(SignalModel(kind, params, CLASSES, seed=0))
        return fitted[-1]

    result = out_of_fold(make, trials, cv)
    for model, record in zip(fitted, result.folds, strict=True):
        assert set(model.seen_epoch_ids) == set(record.fit_epoch_ids)
        assert not set(model.seen_epoch_ids) & set(record.predicted_epoch_ids)
    assert scores(trials.labels(cv), result.predictions())["macro_f1"] > 0.8
    test = np.flatnonzero(trials.table.fold.to_numpy() < 0)
    final = make().fit(trials, cv)
    assert (
        np.asarray(CLASSES)[final.predict_proba(trials, test).argmax(1)] == trials.labels(test)
    ).mean() > 0.8


def test_fgmdm_is_known_to_need_enough_channels_for_its_classes():
    assert unfit_reason("fgmdm", 1, 3) and "2 tangent-space dimensions" in unfit_reason(
        "fgmdm", 1, 3
    )
    assert unfit_reason("fgmdm", 1, 2) is None and unfit_reason("fgmdm", 2, 4) is None
    assert unfit_reason("tangent_space", 1, 5) is None
