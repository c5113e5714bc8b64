"""Signal processing of real recordings that knows nothing of Kedro: recordings, filters, epochs."""
