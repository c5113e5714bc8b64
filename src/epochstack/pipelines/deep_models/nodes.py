"""Nodes of the deep_models pipeline: thin calls into ``epochstack.models.deep``.

Every enabled network (``deep_models.enabled``, read when the node runs) is a base model of the
stack (:func:`epochstack.models.deep.base_models.fit_networks`): out-of-fold probabilities, test
probabilities from a final model, its weights exported under ``deep_models.model_dir/<name>/``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from epochstack.execution import Executor
from epochstack.models.deep.base_models import fit_networks
from epochstack.models.engine import scores
from epochstack.signals.epoch_store import EpochStore


def train_deep_models(
    epoch_signals: EpochStore,
    epoch_table: pd.DataFrame,
    folds: pd.DataFrame,
    deep_models: dict,
    protocol: str,
    optuna_storage: str,
    device: str,
    executor: dict,
) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict, dict]:
    """Out-of-fold and test probabilities of every enabled network, the final fitted networks
    by name, a report per network (scores, folds, passes, tuned parameters) and the per-fold
    seconds of each network (for MLflow: timings stay out of the versioned reports)."""
    return fit_networks(
        epoch_signals,
        epoch_table,
        folds,
        deep_models,
        protocol=protocol,
        storage=optuna_storage,
        device=device,
        executor=Executor.from_params(executor),
    )


def plot_training_curves(deep_models_report: dict) -> dict[str, plt.Figure]:
    """Per network: training and validation loss and score per pass, one line per fold model and the final model."""
    figures = {}
    for name, report in deep_models_report.items():
        runs = [
            (f"fold {f['fold']}", f.get("model", {}).get("history", [])) for f in report["folds"]
        ] + [("final", report["final"].get("history", []))]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for i, (label, history) in enumerate(runs):
            passes, colour = [h["pass_index"] for h in history], f"C{i}"
            for key, style, suffix in (("train", "-", "train"), ("val", "--", "validation")):
                loss, score = ([h[f"{key}_{m}"] for h in history] for m in ("loss", "score"))
                axes[0].plot(passes, loss, color=colour, linestyle=style, label=f"{label} {suffix}")
                axes[1].plot(passes, score, color=colour, linestyle=style)
        axes[0].set(xlabel="pass", ylabel="loss", title=f"{name}: loss")
        title = f"{name}: score (dashed: validation subjects)"
        axes[1].set(xlabel="pass", ylabel="validation score", title=title)
        axes[0].legend(fontsize=7, ncol=2)
        fig.tight_layout()
        figures[f"{name}_training_curves.png"] = fig
    if not figures:  # the artifact folder still says why it is empty
        fig, ax = plt.subplots(figsize=(5, 1))
        ax.text(
            0.5, 0.5, "deep_models.enabled is empty: no network trained", ha="center", va="center"
        )
        ax.axis("off")
        figures["no_network_trained.png"] = fig
    return figures


def score_deep_models(
    deep_oof: pd.DataFrame, epoch_table: pd.DataFrame, deep_model_timings: dict
) -> tuple[dict, dict]:
    """OOF macro F1 / kappa per network (a JSON table, DVC metrics: scores only, so that a rerun
    with the same results compares equal) and MLflow metrics: the scores and per-fold fit seconds."""
    labels = epoch_table.astype({"epoch_id": str}).set_index("epoch_id")["label"]
    table, metrics = {}, {}
    for model, rows in deep_oof.groupby("model", sort=True):
        model_scores = scores(
            labels.loc[rows["epoch_id"].astype(str)].astype(str).to_numpy(dtype=object),
            rows["pred"].to_numpy(dtype=object),
        )
        table[str(model)] = model_scores
        metrics |= {
            f"{model}.oof_{name}": {"value": value, "step": 0}
            for name, value in model_scores.items()
        }
        metrics[f"{model}.fold_fit_seconds"] = [
            {"value": float(value), "step": i}
            for i, value in enumerate(deep_model_timings[model]["fold_fit_seconds"])
        ]
    return table, metrics
