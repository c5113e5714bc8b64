"""Class lists and probability-column names shared by every model and metric."""

from __future__ import annotations

import pandas as pd

PROBA_PREFIX = "proba_"


def class_list(epoch_table: pd.DataFrame) -> list[str]:
    """Sorted class names present among the labelled epochs; the one order used everywhere."""
    return sorted(str(c) for c in epoch_table["label"].dropna().unique())


def proba_columns(classes: list[str]) -> list[str]:
    """Column names ``proba_<class>`` in class order."""
    return [f"{PROBA_PREFIX}{c}" for c in classes]
