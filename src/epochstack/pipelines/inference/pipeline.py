"""inference: new recordings -> epochs -> features -> base models -> meta-learner -> labels.

``kedro run --pipelines inference`` reads the recordings named by ``inference.dataset``;
``create_mlflow_inference_pipeline`` is the same pipeline fed by a table of samples, the input of
the MLflow model that ``pipeline_ml_factory`` packages with the stacking pipeline.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from epochstack.pipelines.data_engineering.nodes import ingest_recordings
from epochstack.pipelines.inference import nodes

# Name of the packaged model's input: continuous samples (time, channels, recording_id, subject_id).
MLFLOW_INPUT = "inference_samples"


def _predict_recordings() -> Pipeline:
    return Pipeline(
        [
            node(
                nodes.epoch_new_recordings,
                ["inference_recordings", "params:inference.dataset", "params:preprocessing", "params:executor"],
                ["inference_epochs", "inference_epoch_table"],
                name="epoch_new_recordings",
            ),
            node(
                nodes.compute_new_features,
                ["inference_epochs", "inference_epoch_table", "params:features", "params:n_jobs"],
                "inference_features",
                name="compute_new_features",
            ),
            node(
                nodes.predict_new_epochs,
                ["stacking_model", "stacking_manifest", "inference_features", "inference_epoch_table"],
                "inference_predictions",
                name="predict_new_epochs",
            ),
        ]
    )


def create_mlflow_inference_pipeline() -> Pipeline:
    """The inference pipeline whose single free input is ``inference_samples`` (for MLflow)."""
    return (
        Pipeline([node(nodes.recordings_from_samples, [MLFLOW_INPUT, "params:inference.dataset"], "inference_recordings", name="recordings_from_samples")])
        + _predict_recordings()
    )


def create_pipeline(**kwargs) -> Pipeline:
    return (
        Pipeline([node(ingest_recordings, "params:inference.dataset", "inference_recordings", name="ingest_new_recordings")])
        + _predict_recordings()
    )
