"""Paired, subject-level comparisons of two models' decisions on the same epochs.

The unit is the subject: epochs of one subject are not independent, and models are compared on
the same subjects, so the comparison is paired. For a metric ``m``:

- ``delta`` = m(model a) - m(model b), each pooled over the subjects' epochs (the same definition
  as the headline metrics);
- ``ci_low`` / ``ci_high``: percentile interval of ``delta`` over bootstrap replicates that draw
  subjects with replacement and apply the *same* draw to both models; only with at least
  ``min_subjects`` subjects, else null with ``ci_reason``;
- ``p_value``: two-sided Wilcoxon signed-rank test (scipy) of the per-subject differences
  (exact for small samples without ties).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import wilcoxon

from epochstack.evaluation.metrics import (
    CONFUSION_SCORES,
    percentile_interval,
    scores_from_confusion,
    subject_confusions,
    subject_resamples,
    too_few_subjects,
)


def wilcoxon_p_value(differences: np.ndarray) -> tuple[float, str | None]:
    """Two-sided Wilcoxon signed-rank p-value of per-subject differences, and why it is missing.

    Undefined differences (NaN) are left out; all-zero differences give p = 1 (no evidence of
    any difference).
    """
    differences = differences[np.isfinite(differences)]
    if len(differences) == 0:
        return float("nan"), "no subject has the metric defined for both models"
    if np.all(differences == 0):
        return 1.0, None
    return float(wilcoxon(differences, zero_method="wilcox", alternative="two-sided").pvalue), None


def paired_comparison(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    subjects: np.ndarray,
    n_classes: int,
    metrics: list[str],
    bootstrap: dict,
    seed: int,
) -> dict[str, dict]:
    """Paired comparison of models a and b (integer codes on the same epochs), per metric.

    ``bootstrap``: ``n_boot``, ``level``, ``min_subjects``. Per metric: ``delta``, ``ci_low``,
    ``ci_high``, ``p_value``, ``n_subjects``, ``n_subjects_a_better``, ``n_subjects_b_better``,
    and ``ci_reason`` / ``p_value_reason`` when those are null.
    """
    unknown = sorted(set(metrics) - set(CONFUSION_SCORES))
    if unknown:
        raise ValueError(f"comparison metrics {unknown} are not among {list(CONFUSION_SCORES)}.")
    _, cms_a = subject_confusions(y_true, pred_a, subjects, n_classes)
    _, cms_b = subject_confusions(y_true, pred_b, subjects, n_classes)
    pooled_a, pooled_b = scores_from_confusion(cms_a.sum(axis=0)), scores_from_confusion(cms_b.sum(axis=0))
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
        p_value, p_reason = wilcoxon_p_value(differences)
        if ci_reason is None:
            ci_low, ci_high = percentile_interval(replicates_a[name] - replicates_b[name], bootstrap["level"])
        else:
            ci_low = ci_high = None
        entry = {
            "delta": float(pooled_a[name] - pooled_b[name]),
            "ci_low": ci_low,
            "ci_high": ci_high,
            "p_value": p_value,
            "n_subjects": n_subjects,
            "n_subjects_a_better": int((differences > 0).sum()),
            "n_subjects_b_better": int((differences < 0).sum()),
        }
        if ci_reason is not None:
            entry["ci_reason"] = ci_reason
        if p_reason is not None:
            entry["p_value_reason"] = p_reason
        result[name] = entry
    return result


def conclusion(comparison: dict, name_a: str, name_b: str, alpha: float) -> str:
    """The claim one comparison supports: ``"<a> better"`` / ``"<b> better"`` only when the
    interval excludes 0 *and* the Wilcoxon p-value is below ``alpha``; otherwise no claim."""
    low, high, p_value = comparison["ci_low"], comparison["ci_high"], comparison["p_value"]
    if low is None or high is None:
        return "no claim: no interval (too few subjects)"
    supported = p_value is not None and np.isfinite(p_value) and p_value < alpha
    if low > 0 and supported:
        return f"{name_a} better"
    if high < 0 and supported:
        return f"{name_b} better"
    return "no supported difference"
