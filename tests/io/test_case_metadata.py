"""Case metadata beside a .ts file groups the folds by session (dataset.uea.groups)."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from epochstack.errors import InputDataError
from epochstack.ids import SAFE_ID
from epochstack.io.case_metadata import group_cases, metadata_path
from epochstack.io.uea import read_uea_pair
from epochstack.models.splits import assign_folds

UEA = Path(__file__).resolve().parents[2] / "data" / "01_raw" / "uea"


@pytest.fixture
def pair(tmp_path):
    """EyesOpenShut (56 training / 42 test cases) copied where metadata can be written beside it."""
    paths = {}
    for split in ("train", "test"):
        paths[split] = tmp_path / f"EyesOpenShut_{split.upper()}.ts"
        shutil.copy(UEA / paths[split].name, paths[split])
    return paths


def _table(cases):
    return pd.DataFrame(
        {
            "epoch_id": [c.recording_id for c in cases],
            "subject_id": [c.subject_id for c in cases],
            "label": [str(c.labels[0]) for c in cases],
            "source_split": [c.source_split for c in cases],
        }
    )


def test_folds_keep_each_session_together(pair):
    n_train = 56
    sessions = [f"s{i % 7}" for i in range(n_train)]  # 7 sessions of 8 trials
    pd.DataFrame({"subject": "p1", "session": sessions}).to_csv(
        metadata_path(pair["train"]), index=False
    )
    cases = group_cases(read_uea_pair(pair["train"], pair["test"]), pair, "session")
    table = _table(cases)
    train = table[table.source_split == "train"]
    assert train.subject_id.nunique() == 7 and train.subject_id.iloc[0] == "EyesOpenShut_train_s0"
    # No test metadata: each test case stays its own subject.
    assert table[table.source_split == "test"].subject_id.is_unique
    folds = assign_folds(table, n_folds=5, n_test_subjects=0)
    merged = table.merge(folds, on="epoch_id")
    per_session = merged[merged.fold >= 0].groupby("subject_id").fold.nunique()
    assert (per_session == 1).all() and merged[merged.fold >= 0].fold.nunique() == 5
    assert (merged.fold[merged.source_split == "test"] == -1).all()
    # Without groups: one subject per case, as before.
    plain = _table(group_cases(read_uea_pair(pair["train"], pair["test"]), pair, None))
    assert plain.subject_id.is_unique


def test_bad_metadata_is_refused_naming_the_file(pair):
    cases = read_uea_pair(pair["train"], pair["test"])
    path = metadata_path(pair["train"])
    with pytest.raises(InputDataError, match="does not exist.*groups"):
        group_cases(cases, pair, "session")
    pd.DataFrame({"session": ["a"] * 55}).to_csv(path, index=False)
    with pytest.raises(InputDataError, match="55 rows for 56 cases"):
        group_cases(cases, pair, "session")
    pd.DataFrame({"run": ["a"] * 56}).to_csv(path, index=False)
    with pytest.raises(InputDataError, match="no column 'session'"):
        group_cases(cases, pair, "session")
    # A session name that is no safe id (spaces, a path, non-ASCII) is made safe, not refused.
    pd.DataFrame({"session": ["../Tag 1", "Müller"] * 28}).to_csv(path, index=False)
    grouped = group_cases(cases, pair, "session")
    subjects = {case.subject_id for case in grouped if case.source_split == "train"}
    assert len(subjects) == 2
    assert all(SAFE_ID.match(subject) for subject in subjects)
