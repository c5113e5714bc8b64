"""Subject-wise folds: one table that every model in every pipeline shares."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, StratifiedGroupKFold

from epochstack.errors import InputDataError

TEST_FOLD = -1
SPLIT_METHODS = (
    "stratified_group_kfold",
    "group_kfold",
    "leave_one_subject_out",
    "stratified_blocks",
)


def choose_test_subjects(
    subjects: list[str], test_subjects: list[str] | None, n_test_subjects: int, seed: int
) -> list[str]:
    """The held-out subjects: the given list (checked) or ``n_test_subjects`` drawn with ``seed``."""
    if test_subjects:
        unknown = sorted(set(map(str, test_subjects)) - set(subjects))
        if unknown:
            raise InputDataError(
                "splits.test_subjects",
                f"unknown subject(s) {unknown}.",
                f"choose among {subjects}.",
            )
        return sorted(map(str, test_subjects))
    if n_test_subjects >= len(subjects):
        raise InputDataError(
            "splits.n_test_subjects",
            f"{n_test_subjects} test subjects leave none of the {len(subjects)} subjects for training.",
            "lower splits.n_test_subjects.",
        )
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(sorted(subjects), size=n_test_subjects, replace=False).tolist())


class StratifiedBlocks:
    """k folds of contiguous blocks in recording order, stratified: each class's subjects, in
    the order they come (sorted ids: a trial file's case order), are cut into ``n_splits``
    consecutive runs, and fold k takes run k of every class.

    For trials of one session with no session labels: neighbouring trials share the state of
    the electrodes and the subject, so shuffled folds put near-copies on both sides and reward
    models of slow drifts (Li et al., 2020, "The perils and pitfalls of block design for EEG
    classification experiments"); blocks keep the neighbours together, as a later session
    would. Written here because scikit-learn's splitters either shuffle or do not stratify.
    """

    def __init__(self, n_splits: int):
        self.n_splits = n_splits

    def split(self, X, y, groups):
        groups, y = np.asarray(groups), np.asarray(y)
        order = pd.unique(groups)
        group_label = pd.Series(y).groupby(groups, sort=False).agg(lambda v: v.mode().iloc[0])
        fold_of, start = {}, 0
        for label in sorted(group_label.unique()):
            members = [g for g in order if group_label[g] == label]
            blocks = np.array_split(np.asarray(members), self.n_splits)
            # Block k of every class is fold k (the same stretch of the recording); a class
            # with fewer subjects than folds starts where the last such class ended.
            small = len(members) < self.n_splits
            for k, block in enumerate(blocks):
                fold = (start * small + k) % self.n_splits
                fold_of.update(dict.fromkeys(block.tolist(), fold))
            start += len(members) * small
        folds = np.array([fold_of[g] for g in groups])
        if len(np.unique(folds)) < self.n_splits:
            raise InputDataError(
                "splits.n_folds",
                f"{self.n_splits} contiguous blocks leave a fold empty ({len(order)} subjects).",
                "lower splits.n_folds.",
            )
        for k in range(self.n_splits):
            yield np.flatnonzero(folds != k), np.flatnonzero(folds == k)


def _cv_splitter(method: str, n_folds: int, seed: int):
    if method == "stratified_blocks":
        return StratifiedBlocks(n_folds)
    if method == "stratified_group_kfold":
        return StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    if method == "group_kfold":
        return GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    if method == "leave_one_subject_out":
        return LeaveOneGroupOut()
    raise InputDataError(
        "splits.method", f"unknown split method {method!r}.", f"use one of {list(SPLIT_METHODS)}."
    )


def assign_folds(
    epoch_table: pd.DataFrame,
    method: str = "stratified_group_kfold",
    n_folds: int = 4,
    test_subjects: list[str] | None = None,
    n_test_subjects: int = 2,
    seed: int = 42,
) -> pd.DataFrame:
    """``epoch_id -> fold``: fold -1 holds the test subjects, 0..k-1 the CV folds, by subject.

    When the source fixes the split (``source_split == "test"``, e.g. a UEA test file), those
    epochs form the test set and no test subjects are drawn.
    """
    table = epoch_table[["epoch_id", "subject_id", "label"]].reset_index(drop=True)
    subjects = table["subject_id"].astype(str)
    fixed = (
        epoch_table["source_split"].astype("object").to_numpy()
        if "source_split" in epoch_table
        else None
    )
    if fixed is not None and pd.notna(fixed).any():
        is_test = fixed == "test"
    else:
        held_out = choose_test_subjects(
            sorted(subjects.unique()), test_subjects, n_test_subjects, seed
        )
        is_test = subjects.isin(held_out).to_numpy()
    fold = np.full(len(table), TEST_FOLD, dtype=np.int64)
    train = np.flatnonzero(~is_test)
    n_groups = subjects.iloc[train].nunique()
    if method != "leave_one_subject_out" and n_groups < n_folds:
        raise InputDataError(
            "splits.n_folds",
            f"{n_folds} folds need at least {n_folds} training subjects; there are {n_groups}.",
            "lower splits.n_folds or add subjects.",
        )
    splitter = _cv_splitter(method, n_folds, seed)
    labels = table["label"].astype(str).to_numpy()[train]
    for k, (_, val) in enumerate(
        splitter.split(train, labels, groups=subjects.iloc[train].to_numpy())
    ):
        fold[train[val]] = k
    return pd.DataFrame({"epoch_id": table["epoch_id"].to_numpy(), "fold": fold})


def folds_hash(folds: pd.DataFrame) -> str:
    """sha256 of the ``epoch_id -> fold`` table sorted by epoch id: identifies a split in manifests."""
    table = (
        folds[["epoch_id", "fold"]].astype({"epoch_id": str, "fold": int}).sort_values("epoch_id")
    )
    payload = "\n".join(f"{e}\t{f}" for e, f in table.itertuples(index=False))
    return hashlib.sha256(payload.encode()).hexdigest()
