"""data_engineering: recordings -> epoch_signals + epoch_table + events + folds."""

from kedro.pipeline import Pipeline, node

from epochstack.pipelines.data_engineering.nodes import (
    ingest_recordings,
    make_folds,
    preprocess_and_epoch,
    quality_metrics,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(ingest_recordings, "params:dataset", "raw_recordings", name="ingest_recordings"),
            node(
                preprocess_and_epoch,
                ["raw_recordings", "params:dataset", "params:preprocessing", "params:n_jobs"],
                ["epoch_signals", "epoch_table", "events", "data_quality_report"],
                name="preprocess_and_epoch",
            ),
            node(make_folds, ["epoch_table", "params:splits"], "folds", name="make_folds"),
            node(quality_metrics, ["data_quality_report", "folds"], "data_engineering_metrics", name="log_data_quality"),
        ]
    )
