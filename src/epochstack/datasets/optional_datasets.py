"""Datasets that load as empty when their file does not exist yet.

For inputs that join a pipeline only when another pipeline has produced them, e.g. deep-model
predictions and fitted networks join the stack when ``deep_models`` has run.
"""

from __future__ import annotations

import logging

import pandas as pd
from kedro_datasets.pandas import ParquetDataset
from kedro_datasets.pickle import PickleDataset

logger = logging.getLogger(__name__)


class OptionalParquetDataset(ParquetDataset):
    """A parquet table, or an empty table when the file does not exist."""

    def load(self) -> pd.DataFrame:
        if not self._exists():
            logger.info("%s does not exist yet: loading an empty table.", self._filepath)
            return pd.DataFrame()
        return super().load()


class OptionalPickleDataset(PickleDataset):
    """A joblib pickle, or ``None`` when the file does not exist."""

    def __init__(self, **kwargs):
        super().__init__(**{"backend": "joblib", **kwargs})

    def load(self):
        if not self._exists():
            logger.info("%s does not exist yet: loading None.", self._filepath)
            return None
        return super().load()
