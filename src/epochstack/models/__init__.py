"""Machine-learning code that knows nothing of Kedro: splits, tabular and deep models, stacking."""
