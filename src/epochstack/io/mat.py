"""MATLAB ``.mat`` recordings: v4-v7 through ``scipy.io.loadmat``, v7.3 (HDF5) through ``h5py``.

One recording per file, in variables whose names are parameters (``dataset.mat.*``):

- ``signals``: a numeric matrix, channels x samples (samples x channels is read too: the
  dimension whose length is the number of channel names is the channel one), in µV for
  EEG/EOG/EMG;
- ``sfreq``: the sampling rate in Hz, a scalar;
- ``channel_names``: the channel names, a cell array of strings (or a char matrix, one per row);
- ``labels`` (optional): one label per ``label_epoch_s`` seconds from the start, a cell array of
  strings (``W``, ``N2``, ``REM``, ``?`` for unscored...) or numeric codes with
  ``label_codes`` naming what each code means (AccuSleep: ``{1: REM, 2: W, 3: NREM}``).

Files are checked when the folder is read (readable, the required variables present); the
signals are read when a recording is loaded. MATLAB v7.3 files store arrays column-major and
strings as UTF-16 code units; the decoding below (``_h5_value``) is written by hand because
h5py reads the HDF5 layer only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from epochstack.errors import InputDataError
from epochstack.io.edf import DEFAULT_SUBJECT_PATTERN, channel_type, subject_id_from_name
from epochstack.signals.recording import Recording

logger = logging.getLogger(__name__)

MAT_SUFFIX = ".mat"
VARIABLES = {  # parameter -> what the variable holds
    "signals_variable": "the channels x samples matrix",
    "sfreq_variable": "the sampling rate in Hz",
    "channels_variable": "the channel names",
}


def read_mat_recordings(
    path: str | Path,
    *,
    signals_variable: str = "signals",
    sfreq_variable: str = "sfreq",
    channels_variable: str = "channel_names",
    labels_variable: str | None = "labels",
    label_epoch_s: float = 30.0,
    label_codes: dict | None = None,
    subject_pattern: str = DEFAULT_SUBJECT_PATTERN,
) -> dict[str, Callable[[], Recording]]:
    """One lazy loader per ``.mat`` file of ``path`` (a file or a folder), by recording id (the
    file stem). Every file is opened now and must hold the signals, rate and channel-name
    variables; the labels variable is optional."""
    files = _mat_files(Path(path))
    names = {
        "signals_variable": signals_variable,
        "sfreq_variable": sfreq_variable,
        "channels_variable": channels_variable,
    }
    subject_regex = re.compile(subject_pattern)
    loaders = {}
    for file in files:
        variables = _variable_names(file)
        for parameter, name in names.items():
            if name not in variables:
                raise InputDataError(
                    file,
                    f"no variable {name!r} ({VARIABLES[parameter]}); variables in the file: "
                    f"{sorted(variables)}.",
                    f"set dataset.mat.{parameter} to the variable holding {VARIABLES[parameter]}.",
                )
        loaders[file.stem] = partial(
            load_mat_recording,
            file,
            recording_id=file.stem,
            subject_id=subject_id_from_name(
                file, subject_regex, subject_pattern, "dataset.mat.subject_pattern"
            ),
            labels_variable=labels_variable if labels_variable in variables else None,
            label_epoch_s=label_epoch_s,
            label_codes=label_codes,
            **names,
        )
    return loaders


def load_mat_recording(
    path: str | Path,
    *,
    recording_id: str,
    subject_id: str,
    signals_variable: str = "signals",
    sfreq_variable: str = "sfreq",
    channels_variable: str = "channel_names",
    labels_variable: str | None = "labels",
    label_epoch_s: float = 30.0,
    label_codes: dict | None = None,
) -> Recording:
    """Read one ``.mat`` file (see the module docstring for the layout)."""
    path = Path(path)
    wanted = [signals_variable, sfreq_variable, channels_variable]
    values = _read_variables(path, wanted + ([labels_variable] if labels_variable else []))
    channel_names = _strings(values[channels_variable])
    if channel_names is None or not channel_names:
        raise InputDataError(
            path,
            f"variable {channels_variable!r} holds no channel names (a cell array of strings).",
            "store the names as a cell array, e.g. {'EEG', 'EMG'}.",
        )
    signals = _channels_first(path, values[signals_variable], len(channel_names), signals_variable)
    sfreq = _scalar(path, values[sfreq_variable], sfreq_variable)
    labels = None
    if labels_variable:
        labels = _labels(path, values[labels_variable], labels_variable, label_codes)
    return Recording(
        recording_id=recording_id,
        subject_id=subject_id,
        signals=signals,
        sfreq=sfreq,
        channel_names=channel_names,
        channel_types=[channel_type(name) for name in channel_names],
        epoch_labels=labels,
        label_epoch_s=float(label_epoch_s) if labels is not None else None,
        source=str(path),
    )


def recording_variables(recording: Recording) -> dict:
    """A recording as the documented variables (``signals, sfreq, channel_names`` and, when
    labelled, ``labels`` and ``label_epoch_s``), ready for ``scipy.io.savemat`` or any v7.3
    writer."""
    variables = {
        "signals": np.asarray(recording.signals, dtype=np.float32),
        "sfreq": float(recording.sfreq),
        "channel_names": np.array(list(recording.channel_names), dtype=object),
    }
    if recording.epoch_labels is not None:
        variables["labels"] = np.array(
            ["?" if label is None else str(label) for label in recording.epoch_labels],
            dtype=object,
        )
        variables["label_epoch_s"] = float(recording.label_epoch_s)
    return variables


def write_mat(recording: Recording, path: str | Path) -> Path:
    """Write a recording as a compressed MATLAB v5 file in the documented layout."""
    path = Path(path)
    scipy.io.savemat(path, recording_variables(recording), do_compression=True)
    return path


def _mat_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputDataError(
            path, "not found.", "set dataset.mat.path to a .mat file or a folder of them."
        )
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == MAT_SUFFIX and p.is_file())
    if not files:
        raise InputDataError(
            path, "no .mat files in this folder.", "point dataset.mat.path at the recordings."
        )
    return files


def _unreadable(path: Path, error: Exception) -> InputDataError:
    detail = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
    return InputDataError(
        path,
        f"not a MATLAB file that scipy (v4-v7) or h5py (v7.3) can read ({detail}).",
        "save it from MATLAB with save(..., '-v7') or '-v7.3', or with scipy.io.savemat.",
    )


def _variable_names(path: Path) -> set[str]:
    """Names of the variables in the file, without reading their data."""
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as file:
                return {name for name in file if not name.startswith("#")}
        return {name for name, _, _ in scipy.io.whosmat(path)}
    except Exception as error:  # scipy and h5py raise many types for broken files
        raise _unreadable(path, error) from error


def _read_variables(path: Path, names: list[str]) -> dict:
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as file:
                return {name: _h5_value(file, file[name]) for name in names}
        return scipy.io.loadmat(path, variable_names=names)
    except Exception as error:  # scipy and h5py raise many types for broken files
        raise _unreadable(path, error) from error


def _h5_value(file: h5py.File, dataset: h5py.Dataset):
    """A v7.3 variable as ``loadmat`` gives it: arrays in MATLAB's order, strings as ``str``,
    cell arrays as object arrays."""
    kind = dataset.attrs.get("MATLAB_class", b"")
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if dataset.attrs.get("MATLAB_empty", 0):
        return np.zeros((0, 0))
    data = dataset[()]
    if kind == "cell":
        cells = np.array([_h5_value(file, file[ref]) for ref in data.ravel()], dtype=object)
        return cells.reshape(data.shape).T
    if kind == "char":
        rows = np.atleast_2d(data.T)  # column-major: a char matrix is stored transposed
        return np.array(["".join(map(chr, row)).rstrip() for row in rows])
    return np.asarray(data).T


def _strings(value) -> list[str] | None:
    """Text items of a cell array, a char matrix or a string array (None when numeric)."""
    array = np.asarray(value)
    if array.dtype.kind in "US":
        return [str(item).strip() for item in array.ravel()]
    if array.dtype == object:
        items = []
        for item in array.ravel():
            text = _strings(item)
            if text is None:
                return None
            items.append(text[0] if text else "")
        return items
    return None


def _channels_first(path: Path, value, n_channels: int, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 2 or array.dtype.kind not in "fiub" or array.size == 0:
        raise InputDataError(
            path,
            f"variable {name!r} is not a numeric matrix (shape {array.shape}, {array.dtype}).",
            "store the signals as a channels x samples numeric matrix.",
        )
    if array.shape[0] != n_channels and array.shape[1] == n_channels:
        array = array.T
    if array.shape[0] != n_channels:
        raise InputDataError(
            path,
            f"variable {name!r} is {array.shape[0]} x {array.shape[1]}, but {n_channels} channel "
            "names are given.",
            "give one channel name per row (channel) of the signals.",
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def _scalar(path: Path, value, name: str) -> float:
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "fiu" or not float(array.ravel()[0]) > 0:
        raise InputDataError(
            path,
            f"variable {name!r} is not a positive number (shape {array.shape}).",
            "store the sampling rate in Hz as a scalar, e.g. sfreq = 256.",
        )
    return float(array.ravel()[0])


def _labels(path: Path, value, name: str, codes: dict | None) -> np.ndarray:
    """One label per epoch; ``?``/empty and NaN are unscored (None)."""
    texts = _strings(value)
    if texts is not None:
        return np.array([text if text not in ("", "?") else None for text in texts], dtype=object)
    numbers = np.asarray(value, dtype=float).ravel()
    if codes is None:
        found = sorted({int(v) for v in numbers[np.isfinite(numbers)]})[:6]
        raise InputDataError(
            path,
            f"variable {name!r} holds numeric codes {found}; what each code means is not in the file.",
            "set dataset.mat.label_codes, e.g. {1: REM, 2: W, 3: NREM} (AccuSleep), or store "
            "the labels as strings.",
        )
    names = {float(code): str(label) for code, label in codes.items()}
    unknown = sorted({v for v in numbers[np.isfinite(numbers)] if v not in names})
    if unknown:
        raise InputDataError(
            path,
            f"label codes {unknown[:6]} are not in dataset.mat.label_codes {codes}.",
            "add them to dataset.mat.label_codes.",
        )
    return np.array([names.get(v) if np.isfinite(v) else None for v in numbers], dtype=object)
