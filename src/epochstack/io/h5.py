"""Epochs stored as rows of an HDF5 matrix (the stacking CLI's ``X_train.h5`` layout).

Each row is one epoch: ``n_meta_columns`` meta columns (one holds the subject id) followed by
the raw samples of one channel. Labels come from a CSV with one row per epoch, in the same order.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.io.edf import channel_type
from epochstack.io.tables import read_csv_table
from epochstack.signals.preprocessing import channel_indices
from epochstack.signals.recording import EpochedRecording

logger = logging.getLogger(__name__)

ROWS_PER_CHUNK = 4096


def read_h5_epochs(
    x_path: str | Path,
    y_path: str | Path | None,
    *,
    dataset_key: str = "features",
    n_meta_columns: int = 11,
    subject_column: int = 0,
    label_column: str | None = None,
    sfreq: float | None = None,
    channel_name: str = "EEG",
    channels: list[str] | None = None,
) -> list[EpochedRecording]:
    """One ``EpochedRecording`` per subject, epochs in file order, read in row chunks.

    ``epoch_index`` counts each subject's rows (0, 1, ...). Labels (``y_path``, optional) are kept
    as strings, not renamed. An ``id`` column in the labels CSV must number the rows consecutively
    in the HDF5 order. Meta columns other than the subject id are not carried over. The file
    holds one channel, ``channel_name``: ``channels``, when given, must name just it. NaN/inf
    samples are an error naming the first bad row and its subject. Without ``sfreq`` the rate
    is unknown and a nominal 1 Hz is used (the pipeline then skips every Hz-based step).
    """
    x_path = Path(x_path)
    if channels:
        channel_indices(channels, [channel_name], x_path)
    if not x_path.is_file():
        raise InputDataError(
            x_path, "file not found.", "set dataset.h5.x_path to an existing .h5 file."
        )
    try:
        h5_file = h5py.File(x_path, "r")
    except OSError as error:
        raise InputDataError(
            x_path, f"not a readable HDF5 file ({error}).", "check the path and the file."
        ) from error
    try:
        with h5_file:
            matrix = _epoch_matrix(x_path, h5_file, dataset_key, n_meta_columns, subject_column)
            n_rows, n_times = matrix.shape[0], matrix.shape[1] - n_meta_columns
            labels = (
                None if y_path is None else read_epoch_labels(Path(y_path), n_rows, label_column)
            )
            subjects = _subject_ids(x_path, matrix[:, subject_column], subject_column)
            rows_of = {s: np.flatnonzero(subjects == s) for s in dict.fromkeys(subjects)}
            epochs_of = _epochs_by_subject(x_path, matrix, subjects, rows_of, n_meta_columns)
    except (OSError, KeyError, RuntimeError) as error:  # h5py's errors while reading the data
        raise InputDataError(
            x_path,
            f"cannot read dataset {dataset_key!r} ({error}).",
            "check the file is complete (copy it again) and written with standard filters.",
        ) from error
    order = list(rows_of)  # subjects in order of first appearance

    rate = 1.0 if sfreq is None else float(sfreq)
    logger.info(
        "%s: %d epochs of %d samples from %d subjects.", x_path, n_rows, n_times, len(order)
    )
    return [
        EpochedRecording(
            recording_id=f"{x_path.stem}_{subject}",
            subject_id=subject,
            epochs=epochs_of[subject],
            sfreq=rate,
            channel_names=[channel_name],
            channel_types=[channel_type(channel_name)],
            labels=None if labels is None else labels[rows_of[subject]],
            source=str(x_path),
        )
        for subject in order
    ]


def _epochs_by_subject(
    x_path: Path,
    matrix: h5py.Dataset,
    subjects: np.ndarray,
    rows_of: dict[str, np.ndarray],
    n_meta_columns: int,
) -> dict[str, np.ndarray]:
    """Each subject's rows as float32 ``(n_epochs, 1, n_times)``, read in row chunks."""
    n_rows, n_times = matrix.shape[0], matrix.shape[1] - n_meta_columns
    epochs_of = {
        s: np.empty((len(rows), 1, n_times), dtype=np.float32) for s, rows in rows_of.items()
    }
    row_in_subject = np.empty(n_rows, dtype=np.int64)
    for rows in rows_of.values():
        row_in_subject[rows] = np.arange(len(rows))
    for start in range(0, n_rows, ROWS_PER_CHUNK):
        stop = min(start + ROWS_PER_CHUNK, n_rows)
        chunk = matrix[start:stop, n_meta_columns:]
        chunk_subjects = subjects[start:stop]
        _check_finite(x_path, chunk, start, chunk_subjects, n_meta_columns)
        for subject in dict.fromkeys(chunk_subjects):
            in_chunk = np.flatnonzero(chunk_subjects == subject)
            epochs_of[subject][row_in_subject[start + in_chunk], 0] = chunk[in_chunk]
    return epochs_of


def read_epoch_labels(y_path: Path, n_rows: int, label_column: str | None = None) -> np.ndarray:
    """Labels CSV, one row per epoch: the named column or the last one, as strings (None = missing)."""
    if not y_path.is_file():
        raise InputDataError(
            y_path, "labels file not found.", "set dataset.h5.y_path to the labels CSV."
        )
    table = read_csv_table(y_path, "labels CSV")
    if label_column is None:
        label_column = table.columns[-1]
    if label_column not in table.columns:
        raise InputDataError(
            y_path,
            f"no label column {label_column!r}; columns are {list(table.columns)}.",
            "set dataset.h5.label_column to one of them (null: the last column).",
        )
    if len(table) != n_rows:
        raise InputDataError(
            y_path,
            f"{len(table)} label rows for {n_rows} epochs.",
            "give exactly one label row per HDF5 row, same order.",
        )
    if "id" in table.columns and label_column != "id":
        ids = pd.to_numeric(table["id"], errors="coerce").to_numpy()
        expected = ids[0] + np.arange(n_rows)
        wrong = np.flatnonzero(ids != expected)
        if len(wrong):
            row = int(wrong[0])
            raise InputDataError(
                y_path,
                f"id column is not in HDF5 row order (row {row} has id {table['id'].iloc[row]}, expected {expected[row]:g}).",
                "sort the labels CSV by id so its rows follow the HDF5 rows.",
            )
    values = table[label_column]
    return np.array([None if pd.isna(v) else _subject_name(v) for v in values], dtype=object)


def _epoch_matrix(
    x_path: Path, h5_file: h5py.File, dataset_key: str, n_meta_columns: int, subject_column: int
) -> h5py.Dataset:
    if dataset_key not in h5_file or not isinstance(h5_file[dataset_key], h5py.Dataset):
        keys = []
        h5_file.visititems(
            lambda name, obj: keys.append(name) if isinstance(obj, h5py.Dataset) else None
        )
        raise InputDataError(
            x_path,
            f"no dataset {dataset_key!r}; datasets in the file: {keys}.",
            "set dataset.h5.dataset_key to one of them.",
        )
    matrix = h5_file[dataset_key]
    if matrix.dtype.kind not in "biuf":
        raise InputDataError(
            x_path,
            f"dataset {dataset_key!r} holds {matrix.dtype} values, not numbers.",
            "store the epochs as a numeric (float) matrix.",
        )
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise InputDataError(
            x_path,
            f"dataset {dataset_key!r} has shape {matrix.shape}; expected (epochs, columns) with rows.",
            "check the file.",
        )
    if n_meta_columns >= matrix.shape[1]:
        raise InputDataError(
            x_path,
            f"n_meta_columns={n_meta_columns} leaves no samples in {matrix.shape[1]} columns.",
            "set dataset.h5.n_meta_columns to the number of meta columns before the samples.",
        )
    if not 0 <= subject_column < n_meta_columns:
        raise InputDataError(
            x_path,
            f"subject_column={subject_column} is not one of the {n_meta_columns} meta columns.",
            "set dataset.h5.subject_column to the meta column holding the subject id.",
        )
    return matrix


def _subject_ids(x_path: Path, values: np.ndarray, subject_column: int) -> np.ndarray:
    """Subject id of each row; a missing (NaN) id is an error naming the rows."""
    missing = np.flatnonzero(pd.isna(values))
    if len(missing):
        raise InputDataError(
            x_path,
            f"{len(missing)} row(s) have no subject id in meta column {subject_column} "
            f"(first: row {int(missing[0])}).",
            "fill the subject column (dataset.h5.subject_column) for every row.",
        )
    return np.array([_subject_name(v) for v in values], dtype=object)


def _check_finite(
    x_path: Path, chunk: np.ndarray, start: int, subjects: np.ndarray, n_meta_columns: int
) -> None:
    bad_rows = np.flatnonzero(~np.isfinite(chunk).all(axis=1))
    if len(bad_rows):
        row = int(bad_rows[0])
        column = int(np.flatnonzero(~np.isfinite(chunk[row]))[0])
        raise InputDataError(
            x_path,
            f"NaN/inf samples in row {start + row} (subject {subjects[row]}, column "
            f"{n_meta_columns + column}: {chunk[row, column]})"
            + (
                f" and {len(bad_rows) - 1} more row(s) up to row {start + int(bad_rows[-1])}."
                if len(bad_rows) > 1
                else "."
            ),
            "impute or drop those epochs (and their label rows) before ingest.",
        )


def _subject_name(value) -> str:
    """``3.0`` -> ``'3'``: ids stored as floats in a numeric matrix."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)
