"""Hypnograms of EDF recordings: which file scores which recording, and its stage rows.

A recording's hypnogram is found, in this order (``hypnogram="auto"``):

1. a hypnogram EDF beside it, matched the Sleep-EDF way: ``SC4001E0-PSG.edf`` pairs with
   ``SC4001EC-Hypnogram.edf`` because the names before ``-PSG``/``-Hypnogram`` agree once their
   last character (the scorer's code) is dropped; identical names also match;
2. a CSV ``<stem>_hypnogram.csv``, ``<stem>-Hypnogram.csv`` or ``<stem>.csv`` with columns
   ``onset, duration, label`` (seconds from the recording start);
3. EDF+ annotations in the recording itself.

Stage names are normalised by :mod:`epochstack.io.labels`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import mne
import numpy as np
import pandas as pd

from epochstack.errors import InputDataError
from epochstack.io.labels import (
    annotation_rows,
    check_annotation_rows,
    normalise_stage,
    require_annotation_columns,
    unknown_stage_names,
)
from epochstack.io.tables import read_csv_table
from epochstack.signals.recording import EVENT_COLUMNS

logger = logging.getLogger(__name__)

HYPNOGRAM_MODES = ("auto", "annotations", "edf", "csv")


def recording_id_from_name(path: Path) -> str:
    """The file stem without a trailing ``-PSG``/``_PSG`` (``SC4001E0-PSG.edf`` -> ``SC4001E0``)."""
    return re.sub(r"[-_]PSG$", "", path.stem, flags=re.IGNORECASE)


def is_hypnogram_name(path: Path) -> bool:
    """True for a file whose name says it is a hypnogram."""
    return "hypnogram" in path.stem.lower()


def _pairing_key(path: Path) -> str:
    return re.sub(r"[-_ ]?(psg|hypnogram)$", "", path.stem, flags=re.IGNORECASE)


def pair_hypnogram_files(psg_files: list[Path], hypnogram_files: list[Path]) -> dict[Path, Path]:
    """Sleep-EDF pairing: equal keys, or keys equal but for their last character."""
    pairs: dict[Path, Path] = {}
    for hypnogram_path in hypnogram_files:
        key = _pairing_key(hypnogram_path)
        exact = [p for p in psg_files if _pairing_key(p) == key]
        matches = exact or [
            p
            for p in psg_files
            if len(_pairing_key(p)) == len(key) and _pairing_key(p)[:-1] == key[:-1]
        ]
        if len(matches) != 1:
            found = (
                "no recording"
                if not matches
                else f"{len(matches)} recordings ({[p.name for p in matches]})"
            )
            raise InputDataError(
                hypnogram_path,
                f"hypnogram matches {found}.",
                "name it like its recording (SC4001E0-PSG.edf <-> SC4001EC-Hypnogram.edf) or move it out of the folder.",
            )
        if matches[0] in pairs:
            raise InputDataError(
                matches[0],
                f"two hypnograms match this recording: {pairs[matches[0]].name}, {hypnogram_path.name}.",
                "keep one hypnogram per recording.",
            )
        pairs[matches[0]] = hypnogram_path
    return pairs


def pair_hypnogram_csvs(folder: Path, psg_files: list[Path]) -> dict[Path, Path]:
    """Each recording's hypnogram CSV in ``folder``; a hypnogram CSV of no recording is an error."""
    pairs: dict[Path, Path] = {}
    claimed: set[Path] = set()
    for psg in psg_files:
        for stem in dict.fromkeys([psg.stem, recording_id_from_name(psg)]):
            for name in (f"{stem}_hypnogram.csv", f"{stem}-Hypnogram.csv", f"{stem}.csv"):
                if (folder / name).is_file() and psg not in pairs:
                    pairs[psg] = folder / name
                    claimed.add(folder / name)
    orphans = [
        p for p in folder.glob("*.csv") if "hypnogram" in p.stem.lower() and p not in claimed
    ]
    if orphans:
        raise InputDataError(
            orphans[0],
            "hypnogram CSV matches no recording in the folder.",
            "name it <recording stem>_hypnogram.csv or move it out of the folder.",
        )
    return pairs


def choose_hypnogram(
    psg: Path, mode: str, edf_hypnogram: Path | None, csv_hypnogram: Path | None
) -> tuple[Path | None, str]:
    """The hypnogram file of ``psg`` and its kind for ``mode`` (``None, "annotations"``: none)."""
    if mode in ("auto", "edf") and edf_hypnogram is not None:
        return edf_hypnogram, "edf"
    if mode in ("auto", "csv") and csv_hypnogram is not None:
        return csv_hypnogram, "csv"
    if mode in ("edf", "csv"):
        raise InputDataError(
            psg,
            f"no {mode} hypnogram found for this recording.",
            f"add <recording>-Hypnogram.{mode} beside it, or set dataset.edf.hypnogram: auto.",
        )
    return None, "annotations"


def annotation_table(annotations: mne.Annotations) -> pd.DataFrame:
    """MNE annotations as rows ``onset_s, duration_s, label`` (blank labels dropped)."""
    table = pd.DataFrame(
        {
            "onset_s": np.asarray(annotations.onset, dtype=float),
            "duration_s": np.asarray(annotations.duration, dtype=float),
            "label": pd.Series(annotations.description, dtype=object),
        }
    )
    return table[table["label"].str.strip() != ""].reset_index(drop=True)


def epoch_stage_texts(stages: pd.DataFrame, duration_s: float, label_epoch_s: float) -> np.ndarray:
    """The hypnogram annotation text holding each epoch's midpoint (``None`` where none does).

    Epoch ``i`` spans ``[i, i + 1) * label_epoch_s``. The array stops at the last full epoch
    covered by both the recording and the hypnogram, so a short hypnogram gives a short array
    (the caller decides whether that is acceptable).
    """
    end_s = min(duration_s, float((stages["onset_s"] + stages["duration_s"]).max()))
    n_epochs = int(np.floor(end_s / label_epoch_s + 1e-6))
    midpoints = (np.arange(n_epochs) + 0.5) * label_epoch_s
    texts = np.full(n_epochs, None, dtype=object)
    for onset, duration, name in stages[EVENT_COLUMNS].itertuples(index=False):
        inside = (midpoints >= onset) & (midpoints < onset + duration)
        texts[inside] = str(name).strip()
    return texts


def stage_runs(texts: list[str], epoch_s: float) -> list[tuple[float, float, str]]:
    """``(onset_s, duration_s, text)`` of each run of equal per-epoch hypnogram texts."""
    runs = []
    start = 0
    for i in range(1, len(texts) + 1):
        if i == len(texts) or texts[i] != texts[start]:
            runs.append((start * epoch_s, (i - start) * epoch_s, texts[start]))
            start = i
    return runs


def read_hypnogram(path: Path, kind: str) -> pd.DataFrame:
    """A hypnogram file's stage rows (``onset_s, duration_s, label``), checked for negative
    durations and overlaps; ``kind`` is ``"edf"`` or ``"csv"``."""
    if kind == "csv":
        table = _read_hypnogram_csv(path)
        check_annotation_rows(table, path, first_row=2, row_name="line")
    else:
        table = _read_hypnogram_edf(path)
        check_annotation_rows(table, path, row_name="annotation")
    return table


def check_hypnogram_file(path: Path, kind: str) -> None:
    """Read a hypnogram when the folder is scanned: bad rows are errors, unknown stage names
    are listed in a warning (their epochs are unscored, excluded and counted); a hypnogram
    with no known stage name at all is an error."""
    table = read_hypnogram(path, kind)
    unknown = unknown_stage_names(table["label"])
    if not unknown:
        return
    if not any(normalise_stage(label) for label in table["label"]):
        raise InputDataError(
            path,
            f"none of its labels is a sleep stage ({', '.join(unknown[:8])}).",
            "write stages as W, N1, N2, N3, REM (or Sleep stage W/1/2/3/4/R, Wake/NREM/REM), "
            "and '?' for unscored epochs.",
        )
    share = table.loc[table["label"].astype(str).isin(unknown), "duration_s"].sum()
    logger.warning(
        "%s: hypnogram labels %s are not sleep stages; their %.0f s are unscored (excluded and "
        "counted as unknown_label). Rename them to W/N1/N2/N3/REM to keep those epochs.",
        path,
        unknown,
        share,
    )


def _read_hypnogram_edf(path: Path) -> pd.DataFrame:
    try:
        annotations = mne.read_annotations(path)
    except Exception as error:  # MNE raises many types for broken files
        raise InputDataError(
            path,
            f"cannot read hypnogram annotations ({error}).",
            "re-export the hypnogram as EDF+.",
        ) from error
    table = annotation_table(annotations)
    if table.empty:
        raise InputDataError(
            path, "hypnogram file has no annotations.", "re-export the hypnogram or remove it."
        )
    return table


def _read_hypnogram_csv(path: Path) -> pd.DataFrame:
    table = read_csv_table(path, "hypnogram CSV")
    table.columns = [str(c).strip().lower() for c in table.columns]
    require_annotation_columns(
        path,
        table,
        "hypnogram CSV",
        "write columns onset, duration (seconds from the recording start) and label.",
    )
    if table.empty:
        raise InputDataError(
            path, "hypnogram CSV has no rows.", "add one row per scored stage run."
        )
    return annotation_rows(path, table)
