"""comparison: MLflow runs of the experiment -> variant x model table, plot, best per metric.

Not part of the default training run: ``kedro run --pipelines comparison`` after the runs (a
``dvc exp run --queue`` grid, or several ``kedro run``s) it compares.
"""

from kedro.pipeline import Pipeline, node

from epochstack.pipelines.comparison import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(nodes.read_runs, "params:comparison", "comparison_runs", name="read_runs"),
            node(
                nodes.compare_variants,
                ["comparison_runs", "params:comparison"],
                ["comparison_table", "comparison_summary"],
                name="compare_variants",
            ),
            node(
                nodes.comparison_markdown,
                ["comparison_table", "comparison_summary", "params:comparison"],
                "comparison_report",
                name="comparison_markdown",
            ),
            node(
                nodes.comparison_plot,
                ["comparison_table", "params:comparison"],
                "comparison_plot",
                name="comparison_plot",
            ),
            node(nodes.log_best_to_mlflow, "comparison_summary", None, name="log_best_to_mlflow"),
        ]
    )
