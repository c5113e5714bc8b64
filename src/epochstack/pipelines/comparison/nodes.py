"""Nodes of the comparison pipeline: thin calls into epochstack.evaluation.variants.

The only node that talks to MLflow reads the runs of the experiment (``mlflow.search_runs`` on
the project's tracking URI, set by kedro-mlflow) and their metrics.json artifacts; everything
after it works on the frame it returns.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow.exceptions import MlflowException

from epochstack.errors import InputDataError
from epochstack.evaluation import variants as vt

logger = logging.getLogger(__name__)


def _experiment(name: str | None):
    """The named experiment, else the one this run logs to."""
    if name:
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            raise InputDataError(
                "comparison.experiment",
                f"no MLflow experiment named {name!r} at {mlflow.get_tracking_uri()}.",
                "name an existing experiment, or null for this run's.",
            )
        return experiment
    run = mlflow.active_run()
    if run is None:
        raise InputDataError(
            "comparison.experiment",
            "is null and no MLflow run is active to take the experiment from.",
            "name the experiment (conf/base/mlflow.yml: tracking.experiment.name).",
        )
    return mlflow.get_experiment(run.info.experiment_id)


def _documents(artifact: str):
    """``run_id -> metrics.json document`` (None when the run has none), counting the misses."""
    missing: list[str] = []

    def document_of(run_id: str) -> dict | None:
        try:
            with tempfile.TemporaryDirectory() as folder:
                path = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=artifact, dst_path=folder
                )
                return json.loads(Path(path).read_text())
        except (MlflowException, OSError, json.JSONDecodeError):
            missing.append(run_id)
            return None

    return document_of, missing


def read_runs(comparison: dict) -> pd.DataFrame:
    """Finished top-level runs of the experiment that scored models (with the intervals of their
    metrics.json artifacts), and the other runs of their DVC experiments."""
    vt.check_settings(comparison)
    experiment = _experiment(comparison.get("experiment"))
    runs = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string=comparison.get("filter") or "",
        max_results=int(comparison["max_runs"]),
        order_by=["attributes.start_time DESC"],
    )
    kept, unfinished = vt.variant_runs(
        runs, comparison["metrics"], comparison["splits"], comparison.get("group_tag")
    )
    if unfinished:
        logger.warning(
            "%d run(s) with model scores did not finish (failed, killed or running): left out.",
            unfinished,
        )
    if kept.empty:
        raise InputDataError(
            f"MLflow experiment {experiment.name!r} ({mlflow.get_tracking_uri()})",
            f"has no finished run with model scores among the {len(runs)} read.",
            "run the training pipelines (kedro run, or a dvc exp grid) first, or check comparison.filter.",
        )
    document_of, missing = _documents(comparison["metrics_artifact"])
    kept = vt.with_intervals(kept, document_of, comparison["metrics"], comparison["splits"])
    if missing:
        logger.warning(
            "%d run(s) with scores have no readable %s artifact: no intervals for them.",
            len(missing),
            comparison["metrics_artifact"],
        )
    logger.info(
        "Comparing %d finished run(s) of experiment %r (%d read).",
        len(kept),
        experiment.name,
        len(runs),
    )
    return kept


def compare_variants(runs: pd.DataFrame, comparison: dict) -> tuple[pd.DataFrame, dict]:
    """The variant x model table and a summary: variants, their parameters, the best per metric."""
    metrics, splits = comparison["metrics"], comparison["splits"]
    variants = vt.group_variants(runs, comparison.get("group_tag"), metrics, splits)
    parameters = vt.distinguishing_parameters(
        variants,
        comparison.get("variant_parameters") or [],
        comparison.get("ignore_parameters") or [],
    )
    table = vt.variant_model_table(variants, parameters, metrics, splits)
    best = vt.best_per_metric(table, metrics, splits, comparison["choose_on"])
    listed = table.drop_duplicates("variant")[
        ["variant", "run_id", "experiment", "run_name", "start_time", "protocol", *parameters]
    ]
    summary = {
        "n_runs": len(runs),
        "n_variants": len(variants),
        "variant_parameters": parameters,
        "chosen_on": comparison["choose_on"],
        "best": best,
        "variants": json.loads(listed.to_json(orient="records")),
    }
    logger.info(
        "%d variant(s) x %d model(s); variants differ in %s.",
        len(variants),
        table["model"].nunique(),
        parameters or "no logged parameter",
    )
    return table, summary


def comparison_markdown(table: pd.DataFrame, summary: dict, comparison: dict) -> str:
    return vt.markdown_report(
        table,
        summary["best"],
        summary["variant_parameters"],
        comparison["metrics"],
        comparison["splits"],
    )


def comparison_plot(table: pd.DataFrame, comparison: dict) -> Figure:
    return vt.comparison_figure(table, comparison["metrics"], comparison["splits"])


def log_best_to_mlflow(summary: dict) -> None:
    """The best variant x model per metric as tags and metrics of this run."""
    if mlflow.active_run() is None:
        return
    tags, metrics = {}, {}
    for metric, choice in summary["best"].items():
        if choice is None:
            continue
        tags[f"comparison.best.{metric}"] = (
            f"{choice['model']} of {choice['variant']} (run {choice['run_id']}, chosen on {choice['chosen_on']})"
        )
        metrics |= {
            f"comparison.best.{metric}.{split}": choice[split]
            for split in ("test", "oof")
            if choice.get(split) is not None
        }
    mlflow.set_tags(tags)
    mlflow.log_metrics({**metrics, "comparison.n_variants": float(summary["n_variants"])})
