"""Sleep-stage names: one vocabulary for every hypnogram source.

Output names are AASM stages ``W, N1, N2, N3, REM`` plus ``NREM`` for sources that score
NREM as one stage (rodent scoring: Wake / NREM / REM). Rechtschaffen & Kales stages 3 and 4
merge into ``N3``. Unscored epochs, movement time and unknown names give ``None``.
Hypnogram tables are checked here too: no negative durations, no overlapping stages.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from epochstack.errors import InputDataError

STAGES = ("W", "N1", "N2", "N3", "REM", "NREM")

_STAGE_ALIASES = {
    "w": "W",
    "wake": "W",
    "awake": "W",
    "a": "W",  # rodent scoring: A(ctive wake)
    "0": "W",
    "1": "N1",
    "n1": "N1",
    "s1": "N1",
    "2": "N2",
    "n2": "N2",
    "s2": "N2",
    "3": "N3",
    "4": "N3",
    "n3": "N3",
    "n4": "N3",
    "s3": "N3",
    "s4": "N3",
    "r": "REM",
    "rem": "REM",
    "5": "REM",
    "paradoxical": "REM",
    "ps": "REM",
    "nrem": "NREM",
    "non-rem": "NREM",
    "nr": "NREM",
    "sws": "NREM",  # rodent scoring: slow-wave sleep = NREM
    "s": "NREM",
}

# Names that are hypnogram entries without a usable stage (they become None labels, not events).
_UNSCORED = {"?", "unscored", "unknown", "movement time", "movement", "mt", "artefact", "artifact"}

_PREFIX = re.compile(r"^\s*(?:sleep\s+stage|sleep_stage|stage)[\s_:-]*", re.IGNORECASE)


def _key(name: str) -> str:
    return _PREFIX.sub("", str(name)).strip().lower()


def normalise_stage(name: str) -> str | None:
    """Map a stage name from any common scheme to ``W, N1, N2, N3, REM, NREM``, or ``None``.

    ``'Sleep stage W'`` -> ``'W'``, ``'Sleep stage 1'`` -> ``'N1'``, ``'3'``/``'4'`` -> ``'N3'``,
    ``'R'``/``'REM'`` -> ``'REM'``, ``'Wake'`` -> ``'W'``, ``'SWS'`` -> ``'NREM'``;
    ``'Sleep stage ?'``, ``'Movement time'`` and unknown names -> ``None``.
    """
    return _STAGE_ALIASES.get(_key(name))


def is_stage_annotation(name: str) -> bool:
    """True when ``name`` is a hypnogram entry (a stage, or an unscored/movement epoch)."""
    key = _key(name)
    return key in _STAGE_ALIASES or key in _UNSCORED or str(name).lower().startswith("sleep stage")


def unknown_stage_names(names) -> list[str]:
    """The distinct names in ``names`` that are neither a stage nor an unscored/movement entry."""
    return sorted({str(name) for name in names if not is_stage_annotation(name)})


def check_annotation_rows(
    rows: pd.DataFrame,
    source: object,
    *,
    what: str = "hypnogram",
    may_overlap: bool = False,
    first_row: int = 1,
    row_name: str = "row",
) -> None:
    """Refuse annotation rows (``onset_s, duration_s, label``) that cannot be right.

    Negative or missing onsets/durations are errors, and so are overlapping rows unless
    ``may_overlap`` (events may overlap; the stages of a hypnogram may not). Errors name
    ``source`` and the rows, numbered from ``first_row`` in the table's order (e.g.
    ``first_row=2, row_name="line"`` for a CSV with a header line).
    """
    onsets = rows["onset_s"].to_numpy(dtype=float)
    durations = rows["duration_s"].to_numpy(dtype=float)
    numbers = np.arange(len(rows)) + first_row
    bad = ~np.isfinite(onsets) | ~np.isfinite(durations) | (onsets < 0) | (durations < 0)
    if bad.any():
        raise InputDataError(
            source,
            f"{int(bad.sum())} {what} {row_name}(s) with a negative or missing onset/duration "
            f"({row_name}s {_listed(numbers[bad])}).",
            "write onsets and durations as non-negative seconds.",
        )
    if may_overlap:
        return
    order = np.argsort(onsets, kind="stable")
    ends = np.maximum.accumulate(onsets[order] + durations[order])
    # A stage may start where the previous one ends; 1 ms absorbs float rounding.
    overlaps = np.flatnonzero(onsets[order][1:] < ends[:-1] - 1e-3)
    if len(overlaps):
        pairs = [f"{numbers[order][i]}/{numbers[order][i + 1]}" for i in overlaps]
        raise InputDataError(
            source,
            f"{len(pairs)} overlapping {what} stage(s) ({row_name}s {_listed(pairs)}).",
            "give each stretch of time one stage (fix the onsets/durations).",
        )


def require_annotation_columns(source: object, table: pd.DataFrame, what: str, fix: str) -> None:
    """Refuse a table (``what``: e.g. ``events CSV``) without ``onset, duration, label`` columns."""
    missing = [c for c in ("onset", "duration", "label") if c not in table.columns]
    if missing:
        raise InputDataError(
            source, f"{what} lacks column(s) {missing}; has {list(table.columns)}.", fix
        )


def annotation_rows(source: object, table: pd.DataFrame) -> pd.DataFrame:
    """A table's ``onset, duration, label`` columns as rows ``onset_s, duration_s, label``."""
    try:
        onsets = pd.to_numeric(table["onset"]).astype(float)
        durations = pd.to_numeric(table["duration"]).astype(float)
    except (TypeError, ValueError) as error:
        raise InputDataError(
            source, f"non-numeric onset/duration ({error}).", "write them in seconds."
        ) from error
    labels = table["label"].astype(str).astype(object)
    return pd.DataFrame({"onset_s": onsets, "duration_s": durations, "label": labels})


def _listed(items, limit: int = 5) -> str:
    items = [str(item) for item in items]
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
