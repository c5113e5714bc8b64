"""inference: new recordings -> epochs -> features -> base models -> the stack -> labels.

``kedro run --pipelines inference`` reads the recordings named by ``inference.dataset`` and
uses the stacking model and manifest of the last training run. The registered MLflow Model
(``epochstack.serving``) and the REST service (``kedro serve``) run the same
``epochstack.inference.label_recordings``.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from epochstack.pipelines.inference import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                nodes.ingest_new_recordings,
                "params:inference.dataset",
                "inference_recordings",
                name="ingest_new_recordings",
            ),
            node(
                nodes.label_recordings,
                [
                    "inference_recordings",
                    "params:inference.dataset",
                    "stacking_model",
                    "stacking_manifest",
                    "params:executor",
                ],
                "inference_predictions",
                name="label_new_recordings",
            ),
        ]
    )
