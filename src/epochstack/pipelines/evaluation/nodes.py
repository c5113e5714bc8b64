"""Nodes of the evaluation pipeline: library functions of ``epochstack.evaluation``.

Order: scoring table -> context (settings checked) -> operating points chosen on OOF ->
smoothing -> epoch metrics, event metrics (frozen operating points), event filter, paired
comparisons -> metrics.json, MLflow, plots, report. Most nodes are the library functions
themselves (they take the node's inputs as they are); the functions below adapt the others.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from epochstack.evaluation import plots
from epochstack.evaluation.comparisons import compare_models as compare_models
from epochstack.evaluation.context import evaluation_context as evaluation_context
from epochstack.evaluation.context import join_scoring_table
from epochstack.evaluation.epoch_scores import compute_epoch_metrics as compute_epoch_metrics
from epochstack.evaluation.event_filter import filter_events as filter_events
from epochstack.evaluation.event_scores import choose_operating_points as choose_operating_points
from epochstack.evaluation.event_scores import compute_event_metrics as compute_event_metrics
from epochstack.evaluation.report import render_report
from epochstack.evaluation.smoothing import smooth_predictions as smooth_predictions
from epochstack.evaluation.summary import assemble_metrics as assemble_metrics
from epochstack.evaluation.summary import log_metrics_to_mlflow as log_metrics_to_mlflow


def build_scoring_table(
    model_predictions: pd.DataFrame, epoch_table: pd.DataFrame, evaluation: dict
) -> tuple[pd.DataFrame, int]:
    """Predictions of ``evaluation.models`` (all when empty) joined to labels, recordings and
    times, with contiguous segments; and the number of unlabelled epochs excluded."""
    return join_scoring_table(model_predictions, epoch_table, evaluation.get("models"))


def confusion_pairs(decisions: pd.DataFrame, evaluation: dict) -> pd.DataFrame:
    """``actual, predicted`` of the reference model's raw test predictions (for ``dvc plots``)."""
    return plots.confusion_pairs(decisions, evaluation["reference_model"])


def make_plots(
    decisions: pd.DataFrame,
    context: dict,
    metrics: dict,
    per_subject: pd.DataFrame,
    fa_curve: pd.DataFrame,
    evaluation: dict,
) -> tuple[dict[str, Figure], list[str]]:
    """PNG figures by file name, and the names."""
    figures = plots.evaluation_figures(
        decisions, context, metrics, per_subject, fa_curve, evaluation
    )
    return figures, sorted(figures)


def write_report(metrics: dict, context: dict, plot_names: list[str], evaluation: dict) -> str:
    """Markdown report (data/08_reporting/report.md)."""
    return render_report(metrics, context["classes"], evaluation.get("targets") or {}, plot_names)
