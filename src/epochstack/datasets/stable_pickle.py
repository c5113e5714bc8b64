"""A pickle backend for Kedro's ``PickleDataset`` (``backend: epochstack.datasets.stable_pickle``)
whose bytes depend only on the object pickled.

scikit-learn trees keep their nodes in a numpy record array with padding bytes, and pickle (and
joblib) copy that memory as it is, uninitialised padding included: two identical fits saved
model files that differed in a few bytes, and DVC saw a changed stage where nothing had
changed. Written here because neither pickle nor joblib clears padding: record arrays with
padding are pickled from a zero-initialised copy. Files load with the standard ``pickle``.
"""

from __future__ import annotations

import pickle
from typing import Any, BinaryIO

import numpy as np


def _has_padding(dtype: np.dtype) -> bool:
    fields = dtype.fields or {}
    return bool(fields) and dtype.itemsize > sum(spec[0].itemsize for spec in fields.values())


class _StablePickler(pickle.Pickler):
    def __init__(self, file: BinaryIO, protocol: int):
        super().__init__(file, protocol=protocol)
        self.protocol_version = protocol

    def reducer_override(self, obj: Any):
        if type(obj) is np.ndarray and _has_padding(obj.dtype):
            clean = np.zeros(obj.shape, dtype=obj.dtype)
            for name in obj.dtype.names:
                clean[name] = obj[name]
            return clean.__reduce_ex__(self.protocol_version)
        return NotImplemented


def dump(obj: Any, file: BinaryIO, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
    """Pickle ``obj`` to ``file`` with zeroed padding in record arrays."""
    _StablePickler(file, protocol=protocol).dump(obj)


def dumps(obj: Any, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
    """:func:`dump` to bytes."""
    import io

    buffer = io.BytesIO()
    dump(obj, buffer, protocol)
    return buffer.getvalue()


def load(file: BinaryIO) -> Any:
    """Unpickle an object written by :func:`dump` (standard pickle)."""
    return pickle.load(file)
