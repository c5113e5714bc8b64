"""evaluation: model_predictions + epoch_table (+ folds, events, features) -> metrics.json, plots, report."""

from kedro.pipeline import Pipeline, node

from epochstack.pipelines.evaluation import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                nodes.build_scoring_table,
                ["model_predictions", "epoch_table", "params:evaluation"],
                ["evaluation_scoring_table", "evaluation_unlabelled_count"],
                name="build_scoring_table",
            ),
            node(
                nodes.evaluation_context,
                [
                    "evaluation_scoring_table",
                    "evaluation_unlabelled_count",
                    "epoch_table",
                    "events",
                    "params:evaluation",
                    "params:dataset.label_mapping",
                    "stack_report",
                ],
                "evaluation_context",
                name="evaluation_context",
            ),
            node(
                nodes.choose_operating_points,
                ["evaluation_scoring_table", "evaluation_context", "events", "params:evaluation"],
                "evaluation_operating_points",
                name="choose_operating_points",
            ),
            node(
                nodes.smooth_predictions,
                [
                    "evaluation_scoring_table",
                    "evaluation_context",
                    "evaluation_operating_points",
                    "epoch_table",
                    "folds",
                    "params:evaluation",
                ],
                "evaluation_decisions",
                name="smooth_predictions",
            ),
            node(
                nodes.compute_epoch_metrics,
                ["evaluation_decisions", "evaluation_context", "params:evaluation"],
                ["evaluation_epoch_metrics", "per_subject_metrics"],
                name="compute_epoch_metrics",
            ),
            node(
                nodes.compute_event_metrics,
                [
                    "evaluation_decisions",
                    "evaluation_context",
                    "events",
                    "evaluation_operating_points",
                    "params:evaluation",
                ],
                ["evaluation_event_metrics", "sensitivity_fa_curve"],
                name="compute_event_metrics",
            ),
            node(
                nodes.filter_events,
                [
                    "evaluation_decisions",
                    "evaluation_context",
                    "events",
                    "features",
                    "evaluation_operating_points",
                    "params:evaluation",
                ],
                "evaluation_event_filter",
                name="filter_events",
            ),
            node(
                nodes.compare_models,
                [
                    "evaluation_decisions",
                    "evaluation_context",
                    "evaluation_epoch_metrics",
                    "params:evaluation",
                ],
                "evaluation_comparisons",
                name="compare_models",
            ),
            node(
                nodes.assemble_metrics,
                [
                    "evaluation_epoch_metrics",
                    "evaluation_event_metrics",
                    "evaluation_event_filter",
                    "evaluation_comparisons",
                    "evaluation_operating_points",
                    "evaluation_decisions",
                    "evaluation_context",
                    "params:evaluation",
                ],
                "evaluation_metrics",
                name="assemble_metrics",
            ),
            node(
                nodes.log_metrics_to_mlflow,
                "evaluation_metrics",
                None,
                name="log_metrics_to_mlflow",
            ),
            node(
                nodes.confusion_pairs,
                ["evaluation_decisions", "params:evaluation"],
                "confusion_pairs",
                name="confusion_pairs",
            ),
            node(
                nodes.make_plots,
                [
                    "evaluation_decisions",
                    "evaluation_context",
                    "evaluation_metrics",
                    "per_subject_metrics",
                    "sensitivity_fa_curve",
                    "params:evaluation",
                ],
                ["evaluation_plots", "evaluation_plot_names"],
                name="make_plots",
            ),
            node(
                nodes.write_report,
                [
                    "evaluation_metrics",
                    "evaluation_context",
                    "evaluation_plot_names",
                    "params:evaluation",
                ],
                "evaluation_report",
                name="write_report",
            ),
        ]
    )
