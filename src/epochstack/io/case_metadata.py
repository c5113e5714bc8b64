"""Case metadata of trial files: the session or subject each case of a ``.ts`` file came from.

A UEA ``.ts`` file says nothing about who or when a case was recorded, so each case is its own
subject and the CV folds mix trials of every session. When the sessions are known, a CSV beside
the ``.ts`` file, named ``<file stem>_metadata.csv`` (``A_TRAIN.ts`` -> ``A_TRAIN_metadata.csv``),
holds one row per case in file order, with any columns (e.g. ``subject``, ``session``).
``dataset.uea.groups: <column>`` makes that column's value the cases' subject, so the folds
(grouped by subject) never fit and predict trials of one session: the out-of-fold scores then
estimate what a new session gives. The test file's metadata, when present, is used alike.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from epochstack.errors import InputDataError
from epochstack.ids import safe_id
from epochstack.signals.recording import EpochedRecording

SUFFIX = "_metadata.csv"


def metadata_path(ts_path: str | Path) -> Path:
    """Where the case metadata of ``ts_path`` lives: ``<stem>_metadata.csv`` beside it."""
    ts_path = Path(ts_path)
    return ts_path.with_name(ts_path.stem + SUFFIX)


def read_case_metadata(path: Path, n_cases: int) -> pd.DataFrame:
    """The metadata table (text columns), checked to hold one row per case."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputDataError(
            path,
            f"is not a readable CSV ({str(error).splitlines()[0]}).",
            "write one header line, then one row per case.",
        ) from error
    if len(table) != n_cases:
        raise InputDataError(
            path,
            f"has {len(table)} rows for {n_cases} cases.",
            "give one row per case of the .ts file, in the file's order.",
        )
    return table


def group_cases(
    cases: list[EpochedRecording], paths: dict[str, str | Path], column: str | None
) -> list[EpochedRecording]:
    """``cases`` with ``subject_id`` set from ``column`` of their file's case metadata.

    ``paths``: the ``.ts`` file of each split (``train``, ``test``). The training file's
    metadata is required when ``column`` is set; a test file without one keeps a subject per case.
    """
    if not column:
        return cases
    grouped = []
    for split, ts_path in paths.items():
        part = [c for c in cases if c.source_split == split]
        path = metadata_path(ts_path)
        if not path.is_file():
            if split == "train":
                raise InputDataError(
                    path,
                    f"does not exist, but dataset.uea.groups is {column!r}.",
                    f"write the training cases' {column} there (one row per case, file order), "
                    "or set dataset.uea.groups: null.",
                )
            grouped += part
            continue
        table = read_case_metadata(path, len(part))
        if column not in table.columns:
            raise InputDataError(
                path,
                f"has no column {column!r} (columns: {list(table.columns)}).",
                "add it, or set dataset.uea.groups to one of the columns.",
            )
        for case, value in zip(part, table[column].str.strip(), strict=True):
            prefix = case.subject_id.rsplit("_", 1)[0]  # <problem>_<split>
            subject = safe_id(f"{prefix}_{value}", path, f"{column} value {value!r}: subject_id")
            grouped.append(replace(case, subject_id=subject))
    return grouped
