"""data_engineering: recordings -> epoch_signals + epoch_table + events + folds.

Every output is handed to the catalog by the last node, once the split is known to be
feasible: a run that fails anywhere leaves the previous run's outputs untouched.
"""

from kedro.pipeline import Pipeline, node

from epochstack.pipelines.data_engineering.nodes import (
    epoch_recordings,
    ingest_recordings,
    make_folds,
    publish_epochs,
    quality_metrics,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(ingest_recordings, "params:dataset", "raw_recordings", name="ingest_recordings"),
            node(
                epoch_recordings,
                [
                    "raw_recordings",
                    "params:dataset",
                    "params:preprocessing",
                    "params:executor",
                    "params:staging_dir",
                ],
                [
                    "staged_epoch_signals",
                    "staged_epoch_table",
                    "staged_events",
                    "staged_data_quality_report",
                ],
                name="epoch_recordings",
            ),
            node(
                make_folds,
                ["staged_epoch_table", "params:splits"],
                "staged_folds",
                name="make_folds",
            ),
            node(
                publish_epochs,
                [
                    "staged_epoch_signals",
                    "staged_epoch_table",
                    "staged_events",
                    "staged_data_quality_report",
                    "staged_folds",
                ],
                ["epoch_signals", "epoch_table", "events", "data_quality_report", "folds"],
                name="publish_epochs",
            ),
            node(
                quality_metrics,
                ["data_quality_report", "folds"],
                "data_engineering_metrics",
                name="log_data_quality",
            ),
        ]
    )
