"""Nodes of the inference pipeline: thin calls into :mod:`epochstack.inference`.

:func:`epochstack.inference.label_recordings` is the one implementation of labelling new
recordings: ``kedro run --pipelines inference``, the MLflow Model (:mod:`epochstack.serving`)
and the REST service (:mod:`epochstack.service`) all call it.
"""

from __future__ import annotations

from epochstack.inference import label_recordings
from epochstack.recordings import RecordingSource, read_recordings

__all__ = ["ingest_new_recordings", "label_recordings"]


def ingest_new_recordings(dataset: dict) -> dict[str, RecordingSource]:
    """The new recordings named by ``inference.dataset``, lazily read (any training format)."""
    return read_recordings(dataset)
