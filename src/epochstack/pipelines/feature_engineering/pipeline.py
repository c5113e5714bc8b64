"""feature_engineering: epoch_signals + epoch_table -> features (+ MLflow metrics)."""

from kedro.pipeline import Pipeline, node

from epochstack.pipelines.feature_engineering.nodes import compute_features, feature_metrics


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                compute_features,
                ["epoch_signals", "epoch_table", "params:features", "params:executor"],
                ["features", "feature_extraction_report", "feature_extraction_seconds"],
                name="compute_features",
            ),
            node(
                feature_metrics,
                ["features", "feature_extraction_report", "feature_extraction_seconds"],
                "feature_engineering_metrics",
                name="log_feature_metrics",
            ),
        ]
    )
