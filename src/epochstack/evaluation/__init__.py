"""Metrics, smoothing and plots that know nothing of Kedro."""
