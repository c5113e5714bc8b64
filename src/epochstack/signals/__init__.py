"""Signal processing that knows nothing of Kedro: recordings, synthetic data, filters, epochs."""
