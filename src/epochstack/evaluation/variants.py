"""Variant x model tables over MLflow runs: which parameter set, with which model, scored what.

A *variant* is one parameter set trained and evaluated: one MLflow run of the training
pipelines, or every run of one DVC experiment (``dvc exp run`` runs each stage as its own
``kedro run``; their runs share the experiment's name in a tag, see ``group_tag``). The
parameters that tell variants apart are those whose logged values differ between the variants
compared, plus the ones named in ``variant_parameters`` (dataset seed, label mapping, window,
model set...) whenever a variant logged them.

Scores are the runs' MLflow metrics ``models.<model>.<split>.<metric>`` (logged by the
evaluation pipeline); intervals come from the ``ci`` blocks of each run's ``metrics.json``
artifact when the run has them (they are null below ``evaluation.bootstrap.min_subjects``).

Plain functions of pandas frames as ``mlflow.search_runs`` returns them; they know nothing of Kedro.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from epochstack.errors import ParameterError

logger = logging.getLogger(__name__)

SPLITS = ("test", "oof")
PARAM, METRIC, TAG = "params.", "metrics.", "tags."
PARENT_TAG = "tags.mlflow.parentRunId"
# Columns of the table before the parameter and score columns.
ID_COLUMNS = [
    "variant",
    "run_id",
    "experiment",
    "run_name",
    "start_time",
    "protocol",
    "model",
    "is_reference",
]


def check_settings(comparison: dict) -> None:
    """Refuse ``comparison`` parameters the table cannot be built from (``ParameterError``)."""
    metrics, splits = comparison.get("metrics"), comparison.get("splits")
    if not metrics or not all(isinstance(m, str) for m in metrics):
        raise ParameterError(
            "comparison.metrics",
            f"is {metrics!r}.",
            "list metric names of metrics.json, e.g. [cohen_kappa, macro_f1].",
        )
    if not splits or not set(splits) <= set(SPLITS):
        raise ParameterError(
            "comparison.splits", f"is {splits!r}.", f"list some of {list(SPLITS)}."
        )
    if comparison.get("choose_on") not in splits:
        raise ParameterError(
            "comparison.choose_on",
            f"is {comparison.get('choose_on')!r}, not one of comparison.splits {list(splits)}.",
            "use oof (or test).",
        )


def score_column(split: str, metric: str, model: str | None = None) -> str:
    """``<split>.<metric>`` in the table, ``metrics.models.<model>.<split>.<metric>`` in runs."""
    return f"{METRIC}models.{model}.{split}.{metric}" if model else f"{split}.{metric}"


def scored_models(runs: pd.DataFrame, metrics: list[str], splits: list[str]) -> list[str]:
    """Models with at least one headline score in ``runs``, sorted."""
    pattern = re.compile(
        rf"^{re.escape(METRIC)}models\.(.+)\.({'|'.join(splits)})\.({'|'.join(map(re.escape, metrics))})$"
    )
    return sorted(
        {m.group(1) for c in runs.columns if (m := pattern.match(c)) and runs[c].notna().any()}
    )


def has_scores(runs: pd.DataFrame, metrics: list[str], splits: list[str]) -> pd.Series:
    """Whether each run logged a headline score of some model."""
    columns = [
        c
        for model in scored_models(runs, metrics, splits)
        for s in splits
        for m in metrics
        if (c := score_column(s, m, model)) in runs
    ]
    return runs[columns].notna().any(axis=1) if columns else pd.Series(False, index=runs.index)


def variant_runs(
    runs: pd.DataFrame, metrics: list[str], splits: list[str], group_tag: str | None
) -> tuple[pd.DataFrame, int]:
    """The finished top-level runs that scored models, with the other finished runs of their DVC
    experiments (the earlier stages, whose parameters the variant shares); also the number of
    scored runs left out because they did not finish (failed, killed or still running)."""
    if runs.empty:
        return runs, 0
    top = runs[runs[PARENT_TAG].isna()] if PARENT_TAG in runs else runs
    scored, finished = has_scores(top, metrics, splits), top["status"] == "FINISHED"
    keep = scored & finished
    tag = f"{TAG}{group_tag}"
    if group_tag and tag in top:
        keep |= finished & top[tag].notna() & top[tag].isin(top.loc[keep, tag])
    return top[keep].reset_index(drop=True), int((scored & ~finished).sum())


def interval_columns(
    document: dict | None, metrics: list[str], splits: list[str]
) -> dict[str, float]:
    """``metrics.models.<m>.<split>.<metric>.ci_low`` / ``ci_high`` from a metrics.json document
    (only where it gives an interval)."""
    found = {}
    for model, blocks in ((document or {}).get("models") or {}).items():
        for split in splits:
            ci = ((blocks or {}).get(split) or {}).get("ci") or {}
            for metric in metrics:
                bounds = ci.get(metric) or {}
                if bounds.get("low") is not None and bounds.get("high") is not None:
                    found[f"{score_column(split, metric, model)}.ci_low"] = float(bounds["low"])
                    found[f"{score_column(split, metric, model)}.ci_high"] = float(bounds["high"])
    return found


def with_intervals(
    runs: pd.DataFrame,
    document_of: Callable[[str], dict | None],
    metrics: list[str],
    splits: list[str],
) -> pd.DataFrame:
    """``runs`` plus interval columns read from the metrics.json of each run with scores
    (``document_of(run_id)``)."""
    scored = has_scores(runs, metrics, splits)
    rows = [
        interval_columns(document_of(run_id), metrics, splits) if score else {}
        for run_id, score in zip(runs["run_id"], scored, strict=True)
    ]
    extra = pd.DataFrame(rows, index=runs.index)
    return pd.concat([runs, extra], axis=1) if len(extra.columns) else runs


def group_variants(
    runs: pd.DataFrame, group_tag: str | None, metrics: list[str], splits: list[str]
) -> pd.DataFrame:
    """One row per variant: runs sharing ``tags.<group_tag>`` (a DVC experiment's stages) are
    merged (a parameter takes its latest logged value); scores, run id and name come from the
    variant's latest run with scores. Runs without the tag are variants of their own."""
    runs = runs.sort_values("start_time", kind="stable")
    tag = f"{TAG}{group_tag}"
    experiment = (
        runs[tag] if group_tag and tag in runs else pd.Series(None, index=runs.index, dtype=object)
    )
    runs = runs.assign(experiment=experiment, _scored=has_scores(runs, metrics, splits))
    params = [c for c in runs.columns if c.startswith(PARAM)]
    variants = []
    for key, group in runs.groupby(experiment.fillna(runs["run_id"]), sort=False):
        scored = group[group["_scored"]]
        if scored.empty:
            continue
        if len(scored) > 1:
            logger.warning(
                "DVC experiment %s has %d runs with scores: the latest (%s) is compared.",
                key,
                len(scored),
                scored["run_id"].iloc[-1],
            )
        latest = scored.iloc[-1].copy()
        latest[params] = group[params].ffill().iloc[-1]
        variants.append(latest.drop("_scored"))
    return pd.DataFrame(variants).reset_index(drop=True)


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def distinguishing_parameters(
    variants: pd.DataFrame, always: list[str], ignore: list[str]
) -> list[str]:
    """Parameter names that tell variants apart: logged with different values by two variants,
    or matching ``always`` and logged by any; never those matching ``ignore``."""
    names = []
    for column in sorted(c for c in variants.columns if c.startswith(PARAM)):
        name, values = column.removeprefix(PARAM), variants[column]
        if _matches(name, ignore) or values.isna().all():
            continue
        if values.nunique(dropna=True) > 1 or _matches(name, always):
            names.append(name)
    return names


def short_names(parameters: list[str]) -> dict[str, str]:
    """Each dotted name shortened to its fewest last parts that no other name ends with
    (``stacking.seed`` -> ``seed``; ``eeg.l_freq`` beside ``emg.l_freq``)."""
    short = {}
    for name in parameters:
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            tail = ".".join(parts[-k:])
            if not any(
                other != name and (other == tail or other.endswith(f".{tail}"))
                for other in parameters
            ):
                break
        short[name] = tail
    return short


def variant_labels(variants: pd.DataFrame, parameters: list[str]) -> list[str]:
    """A readable, unique label per variant: the DVC experiment's name, else its distinguishing
    parameter values (``seed=43, enabled=['logreg']``), else the run name; plus a short run id
    when two labels would be equal."""
    differing = [p for p in parameters if variants[f"{PARAM}{p}"].nunique(dropna=True) > 1]
    short = short_names(differing)
    labels = []
    for _, row in variants.iterrows():
        values = ", ".join(
            f"{short[p]}={row[f'{PARAM}{p}']}" for p in differing if pd.notna(row[f"{PARAM}{p}"])
        )
        experiment = row.get("experiment")
        labels.append(
            str(experiment)
            if pd.notna(experiment) and experiment
            else values or str(row.get(f"{TAG}mlflow.runName") or row["run_id"][:8])
        )
    counts = pd.Series(labels).value_counts()
    return [
        f"{label} ({run_id[:8]})" if counts[label] > 1 else label
        for label, run_id in zip(labels, variants["run_id"], strict=True)
    ]


def variant_model_table(
    variants: pd.DataFrame, parameters: list[str], metrics: list[str], splits: list[str]
) -> pd.DataFrame:
    """The variant x model table: one row per model of each variant, with the variant's
    distinguishing parameters and ``<split>.<metric>`` scores (``.ci_low`` / ``.ci_high`` beside
    them, NaN without an interval)."""
    labels = variant_labels(variants, parameters)
    models = scored_models(variants, metrics, splits)
    rows = []
    for label, (_, run) in zip(labels, variants.iterrows(), strict=True):
        for model in models:
            scores = {}
            for split in splits:
                for metric in metrics:
                    source = score_column(split, metric, model)
                    scores[score_column(split, metric)] = run.get(source, np.nan)
                    scores[f"{score_column(split, metric)}.ci_low"] = run.get(
                        f"{source}.ci_low", np.nan
                    )
                    scores[f"{score_column(split, metric)}.ci_high"] = run.get(
                        f"{source}.ci_high", np.nan
                    )
            if pd.isna(pd.Series(scores, dtype=float)).all():
                continue  # this variant did not train that model
            rows.append(
                {
                    "variant": label,
                    "run_id": run["run_id"],
                    "experiment": run.get("experiment"),
                    "run_name": run.get(f"{TAG}mlflow.runName"),
                    "start_time": pd.Timestamp(run["start_time"]).isoformat(),
                    "protocol": run.get(f"{TAG}evaluation.protocol"),
                    "model": model,
                    "is_reference": model == run.get(f"{TAG}evaluation.reference_model"),
                    **{p: run.get(f"{PARAM}{p}") for p in parameters},
                    **scores,
                }
            )
    return pd.DataFrame(rows, columns=[*ID_COLUMNS, *parameters, *_score_columns(metrics, splits)])


def _score_columns(metrics: list[str], splits: list[str]) -> list[str]:
    return [
        f"{score_column(s, m)}{suffix}"
        for s in splits
        for m in metrics
        for suffix in ("", ".ci_low", ".ci_high")
    ]


def _interval(row: pd.Series, column: str) -> list[float] | None:
    low, high = row[f"{column}.ci_low"], row[f"{column}.ci_high"]
    return [float(low), float(high)] if pd.notna(low) and pd.notna(high) else None


def best_per_metric(
    table: pd.DataFrame, metrics: list[str], splits: list[str], choose_on: str
) -> dict:
    """Per metric, the variant x model with the highest ``choose_on`` score, with its score (and
    interval) on every split. Choosing on ``oof`` keeps the held-out test score an estimate of the
    chosen row, not the reason it was chosen."""
    best = {}
    for metric in metrics:
        column = score_column(choose_on, metric)
        if table.empty or table[column].isna().all():
            best[metric] = None
            continue
        row = table.loc[table[column].idxmax()]
        best[metric] = {
            "chosen_on": choose_on,
            "variant": row["variant"],
            "run_id": row["run_id"],
            "model": row["model"],
            **{split: _float_or_none(row[score_column(split, metric)]) for split in splits},
            **{f"{split}_ci": _interval(row, score_column(split, metric)) for split in splits},
        }
    return best


def _float_or_none(value) -> float | None:
    return float(value) if pd.notna(value) else None


def _formatted(row: pd.Series, column: str) -> str:
    if pd.isna(row[column]):
        return ""
    interval = _interval(row, column)
    return f"{row[column]:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


def markdown_report(
    table: pd.DataFrame, best: dict, parameters: list[str], metrics: list[str], splits: list[str]
) -> str:
    """The comparison as Markdown: variants and their parameters, scores with intervals, best per metric."""
    lines = ["# Variant x model comparison", ""]
    if table.empty:
        return "\n".join([*lines, "No finished run with model scores in this experiment.", ""])
    variants = table.drop_duplicates("variant")
    head = ["variant", "run_id", "protocol", *parameters]
    lines += ["## Variants", "", _md_row(head), _md_row(["---"] * len(head))]
    lines += [
        _md_row([str(r[c]) if pd.notna(r[c]) else "" for c in head]) for _, r in variants.iterrows()
    ]
    scores = [score_column(s, m) for s in splits for m in metrics]
    lines += [
        "",
        "## Scores (value [interval])",
        "",
        _md_row(["variant", "model", *scores]),
        _md_row(["---"] * (len(scores) + 2)),
    ]
    lines += [
        _md_row(
            [
                r["variant"],
                r["model"] + (" (reference)" if r["is_reference"] else ""),
                *(_formatted(r, c) for c in scores),
            ]
        )
        for _, r in table.iterrows()
    ]
    lines += ["", "## Best per metric", ""]
    for metric, choice in best.items():
        if choice is None:
            lines.append(f"- {metric}: no score")
            continue
        others = ", ".join(
            f"{s} {choice[s]:.3f}"
            for s in splits
            if s != choice["chosen_on"] and choice[s] is not None
        )
        lines.append(
            f"- {metric}: {choice['model']} of {choice['variant']} ({choice['chosen_on']} {choice[choice['chosen_on']]:.3f}"
            + (f"; {others})" if others else ")")
        )
    return "\n".join([*lines, ""])


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _clipped(label: str, width: int = 60) -> str:
    return label if len(label) <= width else f"…{label[-(width - 1) :]}"


def comparison_figure(table: pd.DataFrame, metrics: list[str], splits: list[str]) -> Figure:
    """One panel per metric: every variant x model row, a marker per split, interval bars where given."""
    rows = [_clipped(f"{v} · {m}") for v, m in zip(table["variant"], table["model"], strict=True)]
    height = 1.6 + 0.32 * max(len(rows), 1)
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(4.5 * len(metrics) + 2.5, height),
        sharey=True,
        layout="constrained",
        squeeze=False,
    )
    y = np.arange(len(rows))
    for ax, metric in zip(axes[0], metrics, strict=True):
        for k, (split, marker) in enumerate(zip(splits, ("o", "s", "^"), strict=False)):
            column = score_column(split, metric)
            values = table[column].to_numpy(dtype=float)
            low = values - table[f"{column}.ci_low"].to_numpy(dtype=float)
            high = table[f"{column}.ci_high"].to_numpy(dtype=float) - values
            ax.errorbar(
                values,
                y + 0.15 * (k - (len(splits) - 1) / 2),
                xerr=np.nan_to_num(np.abs(np.vstack([low, high]))),
                fmt=marker,
                capsize=3,
                label=split,
                ls="none",
            )
        ax.set(title=metric, xlabel=metric)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(y, rows)
    axes[0][0].invert_yaxis()
    axes[0][-1].legend(loc="best", fontsize="small")
    return fig
