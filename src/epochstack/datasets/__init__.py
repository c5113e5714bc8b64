"""Kedro datasets for formats no kedro-datasets class covers."""

from epochstack.datasets.epoch_signals_dataset import EpochSignalsDataset
from epochstack.datasets.optional_datasets import OptionalParquetDataset, OptionalPickleDataset

__all__ = ["EpochSignalsDataset", "OptionalParquetDataset", "OptionalPickleDataset"]
