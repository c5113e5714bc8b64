import pickle

import pytest
from joblib import Parallel, delayed

from epochstack.errors import InputDataError, ParameterError
from epochstack.ids import check_id


def test_input_data_error_survives_pickling():
    error = InputDataError("data/x.edf", "has NaN samples.", "interpolate them.")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is InputDataError
    assert (copy.source, copy.problem, copy.fix) == (
        "data/x.edf",
        "has NaN samples.",
        "interpolate them.",
    )
    assert str(copy) == "data/x.edf: has NaN samples. Fix: interpolate them."
    assert (
        type(pickle.loads(pickle.dumps(ParameterError("splits.n_folds", "is 'abc'."))))
        is ParameterError
    )


def _fail(path):
    if path == "rec_7.edf":
        raise InputDataError(path, "is broken.", "replace it.")
    return path


def test_input_data_error_crosses_worker_processes():
    with pytest.raises(InputDataError, match=r"rec_7\.edf: is broken\. Fix: replace it\."):
        Parallel(n_jobs=2, backend="loky")(delayed(_fail)(f"rec_{i}.edf") for i in range(6, 9))


@pytest.mark.parametrize(
    "bad", ["../../x", "a/b", "..", "a..b", "", ".hidden", "tab\there", "x" * 129, None]
)
def test_unsafe_ids_are_refused(bad):
    with pytest.raises(InputDataError, match="recording_id"):
        check_id(bad, "file.csv", "recording_id")


@pytest.mark.parametrize("good", ["SC4001E0", "sub-01_ses-1", "BasicMotions_TRAIN_00001", "r.2"])
def test_safe_ids_pass(good):
    assert check_id(good, "file.csv", "recording_id") == good
