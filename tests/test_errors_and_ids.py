import pickle
import re

import pytest
from joblib import Parallel, delayed

from epochstack.errors import InputDataError, ParameterError
from epochstack.ids import check_id, safe_id


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


@pytest.mark.parametrize(
    ("given", "made"),
    [
        ("night one", r"night-one-[0-9a-f]{8}"),
        ("Nacht Müller", r"Nacht-Muller-[0-9a-f]{8}"),
        ("睡眠 記録", r"Shui-Mian-Ji-Lu-[0-9a-f]{8}"),
        ("ward/c02", r"ward-c02-[0-9a-f]{8}"),
        ("a..b", r"a\.b-[0-9a-f]{8}"),
        (".hidden", r"hidden-[0-9a-f]{8}"),
        ("???", r"recording-[0-9a-f]{8}"),
        ("x" * 300, r"x{100}-[0-9a-f]{8}"),
        ("sub-01_ses-1", r"sub-01_ses-1"),  # safe ids are kept as they are
    ],
)
def test_names_are_made_safe_readable_and_unique(given, made):
    safe = safe_id(given, "file.csv", "recording_id")
    assert re.fullmatch(made, safe)
    assert check_id(safe, "file.csv", "recording_id") == safe
    assert safe_id(given, "other.csv", "recording_id") == safe  # deterministic


def test_names_with_one_slug_keep_distinct_ids():
    names = ["Müller", "Muller!", "Muller?", "night one", "night_one ", "night-one "]
    assert len({safe_id(n, "f.csv", "recording_id") for n in names}) == len(names)


@pytest.mark.parametrize("bad", ["../../x", "..", "x/../y", "..\\x", "", "  ", None])
def test_parent_steps_and_empty_ids_are_refused(bad):
    with pytest.raises(InputDataError, match=r"file\.csv: recording_id"):
        safe_id(bad, "file.csv", "recording_id")


def test_an_error_is_one_line_whatever_it_quotes():
    error = InputDataError(
        "data/evil\nname.csv", "pandas says:\n  Expected 7 fields\r\n", "fix\nit"
    )
    assert "\n" not in str(error) and "\r" not in str(error)
    assert str(error) == "data/evil name.csv: pandas says: Expected 7 fields Fix: fix it"
