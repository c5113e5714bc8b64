"""Continuous recordings stored as CSV: one row per sample, one column per channel.

Columns: a time column (seconds), the channels (already in the contract's units: µV for
EEG/EOG/EMG, g for accelerometers), optionally ``recording_id``/``subject_id`` columns when the
file holds several recordings, and optionally a per-sample label column. Labels become event runs
``(onset_s, duration_s, label)``; a second CSV can give events directly.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.io.edf import channel_type
from epochstack.io.labels import (
    annotation_rows,
    check_annotation_rows,
    require_annotation_columns,
)
from epochstack.io.tables import read_csv_table
from epochstack.signals.recording import EVENT_COLUMNS, Recording

logger = logging.getLogger(__name__)

MAX_TIME_STEP_DEVIATION = 0.01  # a time step more than 1% away from 1/sfreq is an error


def read_csv_recordings(
    signals_path: str | Path,
    *,
    events_path: str | Path | None = None,
    time_column: str = "time",
    recording_column: str = "recording_id",
    subject_column: str = "subject_id",
    label_column: str | None = None,
    sfreq: float | None = None,
    channel_types: dict[str, str] | None = None,
) -> list[Recording]:
    """Recordings of a sample-per-row CSV, each with its events (from labels or ``events_path``).

    ``sfreq`` is inferred from the time column (each recording's step must be regular within 1%)
    unless given; without a time column ``sfreq`` is required. Without a recording column the file
    is one recording named after its stem; without a subject column each recording is its own
    subject. Events CSV onsets are seconds from the recording's first sample.
    """
    signals_path = Path(signals_path)
    table = _read_table(signals_path, "signals")
    _check_named_columns(signals_path, table, time_column, label_column, sfreq)
    _fill_ids(signals_path, table, recording_column, subject_column)
    reserved = {time_column, recording_column, subject_column, label_column}
    channels = [c for c in table.columns if c not in reserved]
    _check_channels(signals_path, table, channels, recording_column)
    types = [(channel_types or {}).get(name) or channel_type(name) for name in channels]
    extra_events = (
        None if events_path is None else _read_events(Path(events_path), table[recording_column])
    )

    recordings = []
    for recording_id, rows in table.groupby(recording_column, sort=False):
        recording_id = str(recording_id)
        subjects = rows[subject_column].astype(str).unique()
        if len(subjects) != 1:
            raise InputDataError(
                signals_path,
                f"recording {recording_id!r} has several subject ids {list(subjects)}.",
                "give each recording a single subject id.",
            )
        rate, times = _sampling_rate(signals_path, recording_id, rows, time_column, sfreq)
        events = []
        if label_column is not None:
            events.append(_label_runs(rows[label_column].to_numpy(dtype=object), times, rate))
        if extra_events is not None:
            events.append(extra_events[extra_events["recording_id"] == recording_id][EVENT_COLUMNS])
        recordings.append(
            Recording(
                recording_id=recording_id,
                subject_id=str(subjects[0]),
                signals=rows[channels].to_numpy(dtype=np.float32).T.copy(),
                sfreq=rate,
                channel_names=list(channels),
                channel_types=types,
                events=(
                    pd.concat(events, ignore_index=True)
                    .sort_values("onset_s", kind="stable")
                    .reset_index(drop=True)
                    if events
                    else None  # unlabelled: no events at all, not "all background"
                ),
                source=str(signals_path),
            )
        )
    return recordings


def _check_named_columns(
    path: Path, table: pd.DataFrame, time_column: str, label_column: str | None, sfreq: float | None
) -> None:
    """The time column (unless ``sfreq`` is given) and the label column (if named) exist."""
    if time_column not in table.columns and sfreq is None:
        raise InputDataError(
            path,
            f"no time column {time_column!r}; columns are {list(table.columns)}.",
            "set dataset.csv.time_column, or give dataset.sfreq for evenly spaced rows.",
        )
    if label_column is not None and label_column not in table.columns:
        raise InputDataError(
            path,
            f"no label column {label_column!r}; columns are {list(table.columns)}.",
            "set dataset.csv.label_column to an existing column (or null).",
        )


def _fill_ids(path: Path, table: pd.DataFrame, recording_column: str, subject_column: str) -> None:
    """Recording and subject ids on every row, in place (file stem, recording id by default)."""
    if recording_column not in table.columns:
        table[recording_column] = path.stem
    _check_ids_present(path, table, recording_column)
    if subject_column not in table.columns:
        logger.warning("%s: no %r column; each recording is its own subject.", path, subject_column)
        table[subject_column] = table[recording_column]
    _check_ids_present(path, table, subject_column)


def _check_channels(
    path: Path, table: pd.DataFrame, channels: list[str], recording_column: str
) -> None:
    """At least one channel column, each numeric and finite on every row."""
    if not channels:
        raise InputDataError(path, "no channel columns.", "add one numeric column per channel.")
    for name in channels:
        if not pd.api.types.is_numeric_dtype(table[name]):
            example = pd.to_numeric(table[name], errors="coerce").isna() & table[name].notna()
            bad = table[name][example].iloc[0] if example.any() else "missing values"
            raise InputDataError(
                path,
                f"channel column {name!r} is not numeric (e.g. {bad!r}).",
                "keep only numeric channel columns, or name the column in dataset.csv.*_column.",
            )
        bad = ~np.isfinite(table[name].to_numpy(dtype=float))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputDataError(
                path,
                f"channel column {name!r} has {int(bad.sum())} empty/NaN/inf value(s), the first "
                f"on line {row + 2} (recording {table[recording_column].iloc[row]!r}: "
                f"{table[name].iloc[row]}).",
                "fill or interpolate the gaps first (or drop the channel from the file).",
            )


def _check_ids_present(path: Path, table: pd.DataFrame, column: str) -> None:
    """Rows with an empty id would silently fall out of every recording: refuse them."""
    empty = table[column].isna() | (table[column].astype(str).str.strip() == "")
    if empty.any():
        first = int(np.flatnonzero(empty.to_numpy())[0])
        raise InputDataError(
            path,
            f"{int(empty.sum())} row(s) have an empty {column!r} (the first on line {first + 2}).",
            f"fill the {column} column on every row (or drop those rows).",
        )


def _read_table(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise InputDataError(
            path, f"{what} file not found.", f"set dataset.csv.{what}_path to an existing CSV."
        )
    table = read_csv_table(path, f"{what} CSV")
    if table.empty:
        raise InputDataError(path, "no data rows under the header.", "add the rows.")
    return table


def _sampling_rate(
    path: Path, recording_id: str, rows: pd.DataFrame, time_column: str, sfreq: float | None
) -> tuple[float, np.ndarray]:
    """The rate (given or inferred) and each sample's time from the recording's first sample."""
    if time_column not in rows.columns:
        return float(sfreq), np.arange(len(rows)) / float(sfreq)
    times = pd.to_numeric(rows[time_column], errors="coerce").to_numpy(dtype=float)
    if np.isnan(times).any() or len(times) < 2:
        raise InputDataError(
            path,
            f"recording {recording_id!r}: time column {time_column!r} needs at least two numeric values.",
            "write the sample times in seconds.",
        )
    steps = np.diff(times)
    # The median step is robust to a gap; 9 significant digits drop the float noise of the times.
    rate = float(sfreq) if sfreq is not None else float(f"{1.0 / np.median(steps):.9g}")
    deviation = np.abs(steps * rate - 1.0)
    if not np.isfinite(rate) or rate <= 0 or deviation.max() > MAX_TIME_STEP_DEVIATION:
        where = int(np.argmax(deviation))
        raise InputDataError(
            path,
            f"recording {recording_id!r}: irregular time step at t={times[where]:g} s "
            f"({steps[where]:g} s against {1 / rate:g} s).",
            "resample to a regular rate, fill gaps, or split the recording at the gap.",
        )
    return rate, np.arange(len(times)) / rate


def _label_runs(labels: np.ndarray, times: np.ndarray, sfreq: float) -> pd.DataFrame:
    """Runs of equal per-sample labels as events; empty labels are gaps, not events."""
    missing = pd.isna(labels)
    as_text = np.where(missing, "", labels.astype(str))
    starts = np.flatnonzero(np.r_[True, as_text[1:] != as_text[:-1]])
    stops = np.r_[starts[1:], len(labels)]
    keep = ~missing[starts]
    return pd.DataFrame(
        {
            "onset_s": times[starts[keep]],
            "duration_s": (stops[keep] - starts[keep]) / sfreq,
            "label": as_text[starts[keep]].astype(object),
        }
    )


def _read_events(path: Path, recording_ids: pd.Series) -> pd.DataFrame:
    table = _read_table(path, "events")
    table.columns = [str(c).strip() for c in table.columns]
    require_annotation_columns(path, table, "events CSV", "write columns onset, duration, label.")
    known = list(dict.fromkeys(recording_ids.astype(str)))
    if "recording_id" not in table.columns:
        if len(known) > 1:
            raise InputDataError(
                path,
                f"no recording_id column, but the signals hold {len(known)} recordings.",
                "add a recording_id column.",
            )
        table["recording_id"] = known[0]
    table["recording_id"] = table["recording_id"].astype(str)
    unknown = sorted(set(table["recording_id"]) - set(known))
    if unknown:
        raise InputDataError(
            path,
            f"events for unknown recording(s) {unknown}; signals hold {known}.",
            "fix the recording_id values.",
        )
    rows = annotation_rows(path, table)
    rows.insert(0, "recording_id", table["recording_id"])
    check_annotation_rows(rows, path, what="event", may_overlap=True, first_row=2, row_name="line")
    return rows
