"""deep_models: every enabled network out-of-fold, refitted, exported; one table for the stack.

The pipeline's shape is fixed; which networks run is the parameter ``deep_models.enabled``,
read when the node runs (an empty list trains nothing and the stack uses the other models).
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from epochstack.pipelines.deep_models import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                nodes.train_deep_models,
                [
                    "epoch_signals",
                    "epoch_table",
                    "folds",
                    "params:deep_models",
                    "params:evaluation.protocol",
                    "params:optuna_storage",
                    "params:device",
                    "params:executor",
                ],
                [
                    "deep_oof_probabilities",
                    "deep_test_probabilities",
                    "fitted_deep_models",
                    "deep_models_report",
                    "deep_model_timings",
                ],
                name="train_deep_models",
            ),
            node(
                nodes.plot_training_curves,
                "deep_models_report",
                "deep_training_curves",
                name="plot_training_curves",
            ),
            node(
                nodes.score_deep_models,
                ["deep_oof_probabilities", "epoch_table", "deep_model_timings"],
                ["deep_models_scores", "deep_models_metrics"],
                name="score_deep_models",
            ),
        ]
    )
