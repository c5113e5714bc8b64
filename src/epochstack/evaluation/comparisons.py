"""Paired, subject-level comparisons of two models' decisions on the same epochs.

The unit is the subject: epochs of one subject are not independent, and models are compared on
the same subjects, so the comparison is paired. For a metric ``m``:

- ``delta`` = m(model a) - m(model b), each pooled over the subjects' epochs (the same definition
  as the headline metrics);
- ``ci_low`` / ``ci_high``: percentile interval of ``delta`` over bootstrap replicates that draw
  subjects with replacement and apply the *same* draw to both models; only with at least
  ``min_subjects`` subjects, else null with ``ci_reason``;
- ``p_value``: two-sided paired permutation test of ``delta`` (scipy ``permutation_test``,
  ``permutation_type="samples"``): under "no difference" the two models' predictions of a
  subject are exchangeable, so each subject's pair is swapped at random and ``delta`` recomputed.
  Exact (every swap pattern) when there are few subjects; valid for any number of subjects and
  for pooled metrics such as kappa, which per-subject tests (Wilcoxon) cannot handle when
  subjects hold one class or one epoch (trial datasets).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import permutation_test

from epochstack.errors import ParameterError
from epochstack.evaluation.context import SPLITS, class_codes
from epochstack.evaluation.metrics import (
    CONFUSION_SCORES,
    percentile_interval,
    scores_from_confusion,
    subject_confusions,
    subject_resamples,
    too_few_subjects,
)


def paired_permutation_p_value(
    cms_a: np.ndarray, cms_b: np.ndarray, metric: str, n_permutations: int, seed: int
) -> float:
    """Two-sided p-value of the pooled ``metric`` difference between models a and b, swapping the
    two models' confusion matrices ``(n_subjects, K, K)`` subject by subject."""
    stacked = np.concatenate([cms_a, cms_b])
    n_subjects = len(cms_a)

    def pooled_difference(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
        return (
            scores_from_confusion(stacked[a].sum(axis=-3))[metric]
            - scores_from_confusion(stacked[b].sum(axis=-3))[metric]
        )

    if np.array_equal(cms_a, cms_b):
        return 1.0
    result = permutation_test(
        (np.arange(n_subjects), np.arange(n_subjects) + n_subjects),
        pooled_difference,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_permutations,
        alternative="two-sided",
        rng=seed,
    )
    return float(result.pvalue)


def paired_comparison(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    subjects: np.ndarray,
    n_classes: int,
    metrics: list[str],
    bootstrap: dict,
    seed: int,
    n_permutations: int = 9999,
) -> dict[str, dict]:
    """Paired comparison of models a and b (integer codes on the same epochs), per metric.

    ``bootstrap``: ``n_boot``, ``level``, ``min_subjects``. Per metric: ``delta``, ``ci_low``,
    ``ci_high``, ``p_value``, ``n_subjects``; ``n_subjects_with_per_subject_score``,
    ``n_subjects_a_better``, ``n_subjects_b_better`` from per-subject scores (kappa is undefined for
    one-class subjects); and ``ci_reason`` when there is no interval.
    """
    unknown = sorted(set(metrics) - set(CONFUSION_SCORES))
    if unknown:
        raise ValueError(f"comparison metrics {unknown} are not among {list(CONFUSION_SCORES)}.")
    _, cms_a = subject_confusions(y_true, pred_a, subjects, n_classes)
    _, cms_b = subject_confusions(y_true, pred_b, subjects, n_classes)
    pooled_a, pooled_b = (
        scores_from_confusion(cms_a.sum(axis=0)),
        scores_from_confusion(cms_b.sum(axis=0)),
    )
    per_subject_a, per_subject_b = scores_from_confusion(cms_a), scores_from_confusion(cms_b)
    n_subjects = len(cms_a)
    ci_reason = too_few_subjects(n_subjects, bootstrap["min_subjects"])
    if ci_reason is None:
        draws = subject_resamples(n_subjects, bootstrap["n_boot"], seed)
        replicates_a = scores_from_confusion(np.einsum("bs,skl->bkl", draws, cms_a))
        replicates_b = scores_from_confusion(np.einsum("bs,skl->bkl", draws, cms_b))
    result = {}
    for name in metrics:
        differences = per_subject_a[name] - per_subject_b[name]
        if ci_reason is None:
            ci_low, ci_high = percentile_interval(
                replicates_a[name] - replicates_b[name], bootstrap["level"]
            )
        else:
            ci_low = ci_high = None
        entry = {
            "delta": float(pooled_a[name] - pooled_b[name]),
            "ci_low": ci_low,
            "ci_high": ci_high,
            "p_value": paired_permutation_p_value(cms_a, cms_b, name, n_permutations, seed),
            "n_subjects": n_subjects,
            "n_subjects_with_per_subject_score": int(np.isfinite(differences).sum()),
            "n_subjects_a_better": int((differences > 0).sum()),
            "n_subjects_b_better": int((differences < 0).sum()),
        }
        if ci_reason is not None:
            entry["ci_reason"] = ci_reason
        result[name] = entry
    return result


def conclusion(comparison: dict, name_a: str, name_b: str, alpha: float) -> str:
    """The claim one comparison supports: ``"<a> better"`` / ``"<b> better"`` only when the
    interval excludes 0 *and* the permutation p-value is below ``alpha``; otherwise no claim."""
    low, high, p_value = comparison["ci_low"], comparison["ci_high"], comparison["p_value"]
    if low is None or high is None:
        return "no claim: no interval (too few subjects)"
    supported = p_value is not None and np.isfinite(p_value) and p_value < alpha
    if low > 0 and supported:
        return f"{name_a} better"
    if high < 0 and supported:
        return f"{name_b} better"
    return "no supported difference"


def comparison_splits(comparisons: dict, protocol: str) -> list[str]:
    """Splits whose subjects the comparisons use: ``auto`` is OOF + test when nested, test alone
    when non_nested (selection-biased OOF predictions would favour the tuned models)."""
    splits = comparisons.get("splits", "auto")
    if splits == "auto":
        return ["oof", "test"] if protocol == "nested" else ["test"]
    if not splits or not set(splits) <= set(SPLITS):
        raise ParameterError(
            "evaluation.comparisons.splits", f"is {splits!r}.", "use auto or a list of oof / test."
        )
    return list(splits)


def compare_models(
    decisions: pd.DataFrame, context: dict, epoch_metrics: dict, evaluation: dict
) -> dict:
    """Paired subject-level comparisons (raw decisions): the reference model against every other
    model (the best base model, chosen on OOF, among them) and ``extra_pairs``."""
    settings = evaluation["comparisons"]
    metrics = list(settings["metrics"])
    reference, models = context["reference_model"], context["models"]
    splits = comparison_splits(settings, context["protocol"])
    base = [m for m in models if m != reference]
    oof_score = {
        m: epoch_metrics["models"][m].get("oof", {}).get(metrics[0], float("nan")) for m in base
    }
    best_base = (
        max(base, key=lambda m: (np.nan_to_num(oof_score[m], nan=-np.inf), m)) if base else None
    )
    # the pre-specified comparison (reference vs the best base model) first, then the others
    ordered = sorted(base, key=lambda m: m != best_base)
    pairs = [(reference, m) for m in ordered] + [
        tuple(p) for p in settings.get("extra_pairs") or []
    ]
    unknown = sorted({m for pair in pairs for m in pair} - set(models))
    if unknown:
        raise ParameterError(
            "evaluation.comparisons.extra_pairs",
            f"names models {unknown} without predictions (models: {models}).",
            "name scored models.",
        )
    rows = decisions[decisions["split"].isin(splits)]
    boot = evaluation["bootstrap"]
    comparisons = {}
    for a, b in pairs:
        paired = rows[rows["model"] == a].merge(
            rows[rows["model"] == b], on=["epoch_id", "split"], suffixes=("_a", "_b")
        )
        classes = context["classes"]
        result = paired_comparison(
            class_codes(paired, "label_a", classes),
            class_codes(paired, "pred_none_a", classes),
            class_codes(paired, "pred_none_b", classes),
            paired["subject_id_a"].to_numpy(),
            len(classes),
            metrics,
            boot,
            evaluation["seed"],
            settings["n_permutations"],
        )
        comparisons[f"{a}_vs_{b}"] = {
            name: entry | {"conclusion": conclusion(entry, a, b, settings["alpha"])}
            for name, entry in result.items()
        }
    return {
        "comparisons": comparisons,
        "best_base_model": best_base,
        "splits": splits,
        "metrics": metrics,
        "alpha": settings["alpha"],
    }
