"""Tiny, fast data in the project's contracts for model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from epochstack.models.engine import EpochData

CLASSES = ["NREM", "REM", "Wake"]


def informative_data(
    n_subjects: int = 8,
    per_subject: int = 60,
    n_folds: int = 4,
    seed: int = 0,
    n_test_subjects: int = 0,
    strength: float = 2.5,
) -> tuple[EpochData, np.ndarray, np.ndarray]:
    """Features 0-2 shift with the class, the others are noise; subjects spread over folds.

    Returns the data and the positions of its CV and test rows.
    """
    rng = np.random.default_rng(seed)
    rows, values = [], []
    for s in range(n_subjects):
        labels = rng.choice(CLASSES, size=per_subject, p=[0.5, 0.15, 0.35])
        fold = -1 if s >= n_subjects - n_test_subjects else s % n_folds
        for i, label in enumerate(labels):
            rows.append(
                {
                    "epoch_id": f"r{s}_{i:06d}",
                    "recording_id": f"r{s}",
                    "subject_id": f"s{s}",
                    "signal_row": i,
                    "label": label,
                    "fold": fold,
                }
            )
            x = rng.normal(size=6)
            x[CLASSES.index(label)] += strength
            values.append(x)
    table = pd.DataFrame(rows)
    features = pd.DataFrame(
        values, columns=[f"f{j}" for j in range(6)], index=pd.Index(table.epoch_id, name="epoch_id")
    )
    data = EpochData(table, CLASSES, features=features)
    folds = table.fold.to_numpy()
    return data, np.flatnonzero(folds >= 0), np.flatnonzero(folds < 0)


def permuted_labels(data: EpochData, seed: int = 1) -> EpochData:
    """The same data with labels shuffled within each fold: nothing left to learn."""
    rng = np.random.default_rng(seed)
    table = data.table.copy()
    for _, index in table.groupby("fold").groups.items():
        table.loc[index, "label"] = rng.permutation(table.loc[index, "label"].to_numpy())
    return EpochData(table, data.classes, features=data.features)
