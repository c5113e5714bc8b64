"""Uploaded recordings: a safe file name, the format from the extension, read and labelled
the way the inference pipeline reads and labels recordings.

An upload is written to its own folder under a name made safe (letters, digits, ``.``, ``_``,
``-``); a name holding a path is refused, never followed. The reader is the one
``dataset.format`` would pick (:func:`epochstack.recordings.read_recordings`), with the
reader settings of ``inference.dataset`` (variable names of ``.mat`` files, CSV columns...).
"""

from __future__ import annotations

import re
import unicodedata
from functools import partial
from pathlib import Path

import pandas as pd

from epochstack.config import DatasetParams
from epochstack.errors import InputDataError
from epochstack.inference import label_recordings
from epochstack.recordings import read_recordings

# extension -> (dataset.format, what the reader reads)
UPLOAD_FORMATS = {
    ".edf": ("edf", "EDF/EDF+"),
    ".bdf": ("edf", "BDF"),
    ".mat": ("mat", "MATLAB .mat (v5 or v7.3)"),
    ".h5": ("h5", "HDF5 epochs"),
    ".hdf5": ("h5", "HDF5 epochs"),
    ".csv": ("csv", "CSV samples"),
}
IN_PROCESS = {"backend": "local", "address": None, "n_workers": 1}
# Where each format's reader takes its path, and the settings an upload cannot carry.
_PATHS = {
    "edf": lambda path: {"edf": {"path": str(path.parent)}},
    "mat": lambda path: {"mat": {"path": str(path)}},
    "h5": lambda path: {"h5": {"x_path": str(path), "y_path": None}},
    "csv": lambda path: {"csv": {"signals_path": str(path), "events_path": None}},
}


class UnsupportedFormat(InputDataError):
    """An upload whose extension names no format the service reads."""


def safe_file_name(name: str | None) -> str:
    """The upload's file name made safe to write: refused when it holds a path or has no
    known extension; other characters become ``_`` (``nuit été.edf`` -> ``nuit_t.edf``)."""
    raw = (name or "").strip()
    shown = repr(raw[:80])
    if not raw:
        raise InputDataError(
            "file", "the upload has no file name.", "send a file, e.g. curl -F file=@night.edf."
        )
    if any(sep in raw for sep in ("/", "\\")) or raw in (".", "..") or not raw.isprintable():
        raise InputDataError(
            f"file name {shown}",
            "holds a path or control characters; a file name may not.",
            "send the bare file name (curl -F file=@path/to/night.edf sends night.edf).",
        )
    suffix = Path(raw).suffix.lower()
    if suffix not in UPLOAD_FORMATS:
        raise UnsupportedFormat(
            f"file name {shown}",
            f"extension {suffix or '(none)'!r} names no format the service reads.",
            f"upload one of {', '.join(UPLOAD_FORMATS)} (the format is taken from the extension).",
        )
    ascii_stem = unicodedata.normalize("NFKD", Path(raw).stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_stem)).strip("._-")
    return f"{stem[:80] or 'recording'}{suffix}"


def upload_dataset(path: Path, readers: dict | None = None) -> dict:
    """``dataset`` parameters that read the uploaded file: its format from the extension, the
    other reader settings from ``readers`` (the project's ``inference.dataset``) or defaults."""
    fmt = UPLOAD_FORMATS[path.suffix.lower()][0]
    dataset = DatasetParams.model_validate(readers or {}).model_dump()
    for block, values in _PATHS[fmt](path).items():
        dataset[block] = {**dataset[block], **values}
    return {**dataset, "format": fmt, "channels": None}


def _loaded(recording):
    return recording


def read_upload(path: Path, readers: dict | None = None) -> tuple[dict, dict]:
    """The upload's dataset parameters and its recordings, read now: a file the reader cannot
    parse is bad input (one line naming the file), whatever the parser raised."""
    if path.stat().st_size == 0:
        raise InputDataError(path, "the upload is empty (0 bytes).", "send the recording file.")
    dataset = upload_dataset(path, readers)
    kind = UPLOAD_FORMATS[path.suffix.lower()][1]
    try:
        sources = read_recordings(dataset)
        recordings = {rid: partial(_loaded, source()) for rid, source in sources.items()}
    except InputDataError:
        raise
    except Exception as error:  # noqa: BLE001 - a parser failing on uploaded bytes is bad input
        raise InputDataError(
            path,
            f"cannot be read as {kind} ({type(error).__name__}).",
            f"upload a complete {kind} file.",
        ) from error
    return dataset, recordings


def label_file(path: Path, model, readers: dict | None = None) -> pd.DataFrame:
    """Labels and probabilities per epoch of one uploaded recording (``model``: a
    :class:`~epochstack.service.model.ServedModel`), in this process."""
    dataset, recordings = read_upload(path, readers)
    return label_recordings(recordings, dataset, model.stacking_model, model.manifest, IN_PROCESS)
