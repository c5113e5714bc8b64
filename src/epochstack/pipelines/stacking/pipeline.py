"""stacking: base models out-of-fold -> the stack (chosen per outer fold) -> refit -> test predictions.

The pipeline's shape is fixed; which base models run is the parameter ``stacking.enabled`` (and
``deep_models.enabled`` for the deep ones), read when the nodes run.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from epochstack.pipelines.stacking import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                nodes.train_base_models,
                [
                    "features",
                    "epoch_signals",
                    "epoch_table",
                    "folds",
                    "params:stacking",
                    "params:deep_models",
                    "params:evaluation.protocol",
                    "params:optuna_storage",
                    "params:executor",
                ],
                [
                    "base_oof_probabilities",
                    "base_test_probabilities",
                    "fitted_base_models",
                    "base_model_reports",
                    "base_model_timings",
                ],
                name="train_base_models",
            ),
            node(
                nodes.train_stack,
                [
                    "base_oof_probabilities",
                    "base_test_probabilities",
                    "deep_oof_probabilities",
                    "deep_test_probabilities",
                    "epoch_table",
                    "folds",
                    "params:stacking",
                    "params:deep_models",
                    "params:evaluation.protocol",
                ],
                ["stacking_oof_probabilities", "test_predictions", "meta_learner", "stack_report"],
                name="train_stack",
            ),
            node(
                nodes.assemble_stacking_model,
                ["meta_learner", "fitted_base_models", "fitted_deep_models", "epoch_table"],
                "stacking_model",
                name="assemble_stacking_model",
            ),
            node(
                nodes.build_stacking_manifest,
                [
                    "stacking_model",
                    "folds",
                    "params:stacking",
                    "params:dataset",
                    "params:preprocessing",
                    "params:features",
                    "stack_report",
                    "epoch_signals",
                ],
                "stacking_manifest",
                name="build_stacking_manifest",
            ),
            node(
                nodes.collect_model_predictions,
                [
                    "base_oof_probabilities",
                    "base_test_probabilities",
                    "deep_oof_probabilities",
                    "deep_test_probabilities",
                    "stacking_oof_probabilities",
                    "test_predictions",
                ],
                "model_predictions",
                name="collect_model_predictions",
            ),
            node(
                nodes.score_models,
                ["model_predictions", "epoch_table", "base_model_timings", "stack_report"],
                ["stacking_scores", "stacking_metrics"],
                name="score_models",
            ),
            node(
                nodes.log_serving_model,
                [
                    "stacking_model",
                    "stacking_manifest",
                    "epoch_signals",
                    "params:dataset",
                    "params:inference.serving",
                ],
                None,
                name="log_serving_model",
            ),
        ]
    )
