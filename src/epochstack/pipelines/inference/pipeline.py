"""inference: new recordings -> epochs -> features -> base models -> the stack -> labels.

``kedro run --pipelines inference`` reads the recordings named by ``inference.dataset`` and
uses the stacking model and manifest of the last training run.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from epochstack.pipelines.data_engineering.nodes import ingest_recordings
from epochstack.pipelines.inference import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(ingest_recordings, "params:inference.dataset", "inference_recordings", name="ingest_new_recordings"),
            node(
                nodes.epoch_new_recordings,
                ["inference_recordings", "params:inference.dataset", "stacking_manifest", "params:executor"],
                ["inference_epochs", "inference_epoch_table"],
                name="epoch_new_recordings",
            ),
            node(
                nodes.compute_new_features,
                ["inference_epochs", "inference_epoch_table", "stacking_manifest", "params:executor"],
                "inference_features",
                name="compute_new_features",
            ),
            node(
                nodes.predict_new_epochs,
                ["stacking_model", "stacking_manifest", "inference_features", "inference_epochs", "inference_epoch_table"],
                "inference_predictions",
                name="predict_new_epochs",
            ),
        ]
    )
