"""A parquet dataset that loads as an empty table when its file does not exist yet."""

from __future__ import annotations

import logging

import pandas as pd
from kedro_datasets.pandas import ParquetDataset

logger = logging.getLogger(__name__)


class OptionalParquetDataset(ParquetDataset):
    """For inputs that join a pipeline only when another pipeline has produced them.

    Example: deep-model predictions join the stack when ``deep_models`` has run.
    """

    def load(self) -> pd.DataFrame:
        if not self._exists():
            logger.info("%s does not exist yet: loading an empty table.", self._filepath)
            return pd.DataFrame()
        return super().load()
