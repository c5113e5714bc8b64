import numpy as np
import pandas as pd
import pytest

from epochstack.errors import InputDataError
from epochstack.models.splits import assign_folds, folds_hash


def epoch_table(n_subjects=10, per_subject=40, source_split=None):
    rng = np.random.default_rng(0)
    rows = []
    for s in range(n_subjects):
        for i in range(per_subject):
            rows.append(
                {
                    "epoch_id": f"s{s}_{i}",
                    "subject_id": f"sub-{s:02d}",
                    "label": rng.choice(["Wake", "NREM", "REM"]),
                }
            )
    table = pd.DataFrame(rows)
    table["source_split"] = source_split
    return table


@pytest.mark.parametrize(
    "method",
    ["stratified_group_kfold", "group_kfold", "leave_one_subject_out", "stratified_blocks"],
)
def test_every_subject_in_exactly_one_fold_and_test_subjects_apart(method):
    table = epoch_table()
    folds = assign_folds(table, method=method, n_folds=4, n_test_subjects=2, seed=1)
    merged = folds.merge(table, on="epoch_id")
    assert len(merged) == len(table)
    assert (merged.groupby("subject_id")["fold"].nunique() == 1).all()
    test_subjects = set(merged.subject_id[merged.fold == -1])
    assert len(test_subjects) == 2
    assert not test_subjects & set(merged.subject_id[merged.fold >= 0])
    n_cv = 8 if method == "leave_one_subject_out" else 4
    assert sorted(merged.fold[merged.fold >= 0].unique()) == list(range(n_cv))


def test_same_seed_same_folds_other_seed_other_folds():
    table = epoch_table()
    a = assign_folds(table, seed=3)
    assert folds_hash(a) == folds_hash(assign_folds(table, seed=3))
    assert folds_hash(a) != folds_hash(assign_folds(table, seed=4))


def test_explicit_test_subjects_and_unknown_ones():
    table = epoch_table()
    folds = assign_folds(table, test_subjects=["sub-03", "sub-07"]).merge(table, on="epoch_id")
    assert set(folds.subject_id[folds.fold == -1]) == {"sub-03", "sub-07"}
    with pytest.raises(InputDataError, match="unknown subject"):
        assign_folds(table, test_subjects=["sub-99"])


def test_source_split_fixes_the_test_set():
    table = epoch_table(n_subjects=8, per_subject=5)
    table["source_split"] = np.where(table.subject_id.isin(["sub-00", "sub-01"]), "test", "train")
    folds = assign_folds(table, n_folds=3, n_test_subjects=5).merge(table, on="epoch_id")
    assert set(folds.subject_id[folds.fold == -1]) == {"sub-00", "sub-01"}


def test_too_few_subjects_for_the_folds_is_a_clear_error():
    with pytest.raises(InputDataError, match="splits.n_folds"):
        assign_folds(epoch_table(n_subjects=4), n_folds=4, n_test_subjects=2)


def test_stratified_blocks_keep_neighbouring_trials_together():
    """One trial per subject in file order, classes interleaved: each fold is one contiguous
    run of every class's trials, and the classes are balanced across folds."""
    labels = ["open", "shut", "shut", "open"] * 12  # 48 trials, 24 of each class
    table = pd.DataFrame(
        {
            "epoch_id": [f"t{i:03d}" for i in range(48)],
            "subject_id": [f"trial_{i:03d}" for i in range(48)],
            "label": labels,
        }
    )
    folds = assign_folds(table, method="stratified_blocks", n_test_subjects=0).merge(table)
    for _, trials in folds.groupby("label"):
        assert (np.diff(trials.fold.to_numpy()) >= 0).all()  # runs, never back and forth
        assert trials.groupby("fold").size().tolist() == [6, 6, 6, 6]
