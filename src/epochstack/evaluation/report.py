"""A short markdown report of the metrics dictionary written by the evaluation pipeline."""

from __future__ import annotations

import math

HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1", "cohen_kappa")
ESTIMATE_WORDS = {
    "held_out": "held-out test subjects",
    "oof_nested": "out-of-fold predictions of the outer CV folds, tuning nested inside them (unbiased)",
    "oof_selection_biased": "out-of-fold predictions, **selection-biased**: tuning saw these folds (non-nested), read them as optimistic",
}


NOT_TEMPORAL = [
    "## Temporal structure",
    "",
    "Not evaluated: no smoothing method and no impossible transition is configured "
    "(`evaluation.smoothing.methods`, `evaluation.structure.impossible_transitions`), "
    "as for independent trials, whose order means nothing.",
    "",
]


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _fmt_p(value) -> str:
    return "< 0.001" if isinstance(value, float) and 0 <= value < 0.001 else _fmt(value)


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


def _pooled(scores: dict, name: str) -> str:
    ci = (scores.get("ci") or {}).get(name)
    return (
        f"{_fmt(scores.get(name))} [{_fmt(ci['low'])}, {_fmt(ci['high'])}]"
        if ci
        else _fmt(scores.get(name))
    )


def _spread(scores: dict, name: str) -> str:
    s = (scores.get("per_subject") or {}).get(name)
    if not s:
        return "n/a"
    return f"{_fmt(s['mean'])} ± {_fmt(s['sd'])}; {_fmt(s['median'])} [{_fmt(s['q25'])}, {_fmt(s['q75'])}] (n={s['n_subjects']})"


def _targets(scores: dict, targets: dict) -> list[str]:
    rows = []
    for name, threshold in targets.items():
        if isinstance(threshold, dict):
            rows += [
                [
                    f"{name}.{c}",
                    _fmt(scores.get(name, {}).get(c)),
                    f">= {t}",
                    _passes(scores.get(name, {}).get(c), t),
                ]
                for c, t in threshold.items()
            ]
        else:
            rows.append(
                [
                    name,
                    _fmt(scores.get(name)),
                    f">= {threshold}",
                    _passes(scores.get(name), threshold),
                ]
            )
    return _table(["target", "test (reference model, raw)", "goal", "met"], rows)


def _passes(value, threshold) -> str:
    return "yes" if value is not None and math.isfinite(value) and value >= threshold else "**no**"


def _comparisons(metrics: dict) -> list[str]:
    settings = metrics["info"]["comparisons"]
    comparisons = metrics["comparisons"]
    if not comparisons:
        return []
    lines = [
        "## Paired comparisons",
        "",
        f"Subject-level and paired: every model scored on the same epochs of the subjects of {' + '.join(settings['splits'])}. "
        "`delta` = metric(a) - metric(b) pooled over those subjects; interval: paired subject bootstrap "
        f"(same draws for both models, only with >= {metrics['info']['bootstrap_min_subjects']} subjects); p: paired permutation test "
        f"(each subject's two predictions swapped at random). A claim needs the interval to exclude 0 **and** p < {settings['alpha']}. "
        f"Best base model (chosen on OOF {settings['metrics'][0]}): **{metrics['info']['best_base_model']}**.",
        "",
    ]
    rows, claims = [], []
    for pair, by_metric in comparisons.items():
        a, b = pair.split("_vs_", 1)
        for metric, c in by_metric.items():
            interval = (
                f"[{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}]"
                if c["ci_low"] is not None
                else "none (too few subjects)"
            )
            scored = c["n_subjects_with_per_subject_score"]
            counts = (
                f"{c['n_subjects_a_better']} / {c['n_subjects_b_better']} of {scored}"
                if scored
                else "n/a (undefined per subject)"
            )
            rows.append(
                [
                    f"{a} vs {b}",
                    metric,
                    _fmt(c["delta"]),
                    interval,
                    _fmt_p(c["p_value"]),
                    counts,
                    c["conclusion"],
                ]
            )
            if c["conclusion"].endswith(" better"):
                winner = c["conclusion"].removesuffix(" better")
                loser = b if winner == a else a
                claims.append(
                    f"- **{winner} beats {loser}** on {metric}: delta {_fmt(c['delta'])}, interval {interval}, p {_fmt_p(c['p_value'])}."
                )
    lines += _table(
        [
            "comparison (a vs b)",
            "metric",
            "delta",
            "interval",
            "p",
            "subjects a better / b better (of those scored)",
            "conclusion",
        ],
        rows,
    )
    lines += claims or [
        "No comparison supports a claim that one model beats another: the differences above are not distinguishable from 0 with these subjects."
    ]
    return [*lines, ""]


def _operating_point_lines(info: dict, point: dict) -> list[str]:
    return [
        "## Events (detection)",
        "",
        f"Positive class: **{info['positive_class']}**. Any-overlap scoring by `timescoring` (szCORE, 0.1 s resolution); TAES after NEDC; "
        "false alarms per 24 h over scored time only. Every threshold below was **chosen on the reference model's OOF predictions and "
        "applied unchanged to test**.",
        "",
        f"Hysteresis (chosen on OOF, objective {point.get('objective')}): tau_on {_fmt(point.get('tau_on'))}, tau_off {_fmt(point.get('tau_off'))}, "
        f"minimum {point.get('min_epochs')} epochs ({_fmt(point.get('min_duration_s'))} s); OOF sensitivity {_fmt(point.get('sensitivity'))} at "
        f"{_fmt(point.get('fa_per_24h'))} FA/24h.",
        "",
    ]


def _at_fa_table(test: dict, oof: dict) -> list[str]:
    """The thresholds frozen on OOF per false-alarm target, on OOF and on test."""
    rows = []
    for key, t in test["events"].get("at_fa", {}).items():
        o = oof["events"]["at_fa"].get(key, {})
        rows.append(
            [
                key.replace("_", "."),
                _fmt(t["threshold"]),
                _fmt(o.get("sensitivity")),
                _fmt(o.get("fa_per_24h")),
                _fmt(t["sensitivity"]),
                _fmt(t["fa_per_24h"]),
                "yes" if t["fa_target_met"] else "**no**",
            ]
        )
    return _table(
        [
            "FA/24h target",
            "threshold (from OOF)",
            "OOF sensitivity",
            "OOF FA/24h",
            "test sensitivity",
            "test FA/24h",
            "test within target",
        ],
        rows,
    )


def _smoothing_events_table(variants: dict) -> list[str]:
    rows = []
    for name, s in variants.items():
        e = s["events"]
        rows.append(
            [
                name,
                _fmt(e["sensitivity"]),
                _fmt(e["precision"]),
                _fmt(e["f1"]),
                _fmt(e["fa_per_24h"]),
                _fmt(e["taes"]["sensitivity"]),
                _fmt(e["taes"]["fa_per_24h"]),
                _fmt(e["iou"]["f1"]),
            ]
        )
    return _table(
        [
            "smoothing (test)",
            "sensitivity",
            "precision",
            "F1",
            "FA/24h",
            "TAES sensitivity",
            "TAES FA/24h",
            "IoU F1",
        ],
        rows,
    )


def _event_filter_lines(metrics: dict) -> list[str]:
    filtered = [
        (split, metrics[split]["events"]["event_filter"])
        for split in ("oof", "test")
        if "event_filter" in metrics[split].get("events", {})
    ]
    if not filtered:
        return []
    return [
        "Second-stage event filter (random forest over the hysteresis detections, trained on OOF detections only; OOF rows cross-fitted over folds):",
        "",
        *_table(
            [
                "split",
                "detections",
                "kept",
                "sensitivity before -> after",
                "FA/24h before -> after",
                "filter abstained (one-class training)",
            ],
            [
                [
                    split,
                    f["n_detections"],
                    f["n_kept"],
                    f"{_fmt(f['before']['sensitivity'])} -> {_fmt(f['after']['sensitivity'])}",
                    f"{_fmt(f['before']['fa_per_24h'])} -> {_fmt(f['after']['fa_per_24h'])}",
                    f["abstained"],
                ]
                for split, f in filtered
            ],
        ),
    ]


def _events(metrics: dict, variants: dict) -> list[str]:
    """The events section: operating points frozen on OOF, smoothing variants, event filter."""
    info = metrics["info"]
    point = metrics["models"][info["reference_model"]].get("operating_points", {})
    return [
        *_operating_point_lines(info, point.get("hysteresis", {})),
        *_at_fa_table(metrics["test"], metrics["oof"]),
        *_smoothing_events_table(variants),
        *_event_filter_lines(metrics),
        "The test threshold sweep (`sensitivity_fa_curve.csv`, `plots/sensitivity_vs_fa.png`) is a diagnostic curve: nothing is chosen on it.",
        "",
    ]


def _nonempty(line: str) -> list[str]:
    return [line, ""] if line else []


def _stack_sentence(stack: dict) -> str:
    """What the stack is, and which base models it left out (one class predicted in a CV fold)."""
    if not stack.get("selected"):
        return ""
    models = stack.get("stacked_models") or []
    chosen = stack["selected"]
    name = (
        f"**cawpe** (HIVE-COTE 2's accuracy-weighted average of {', '.join(models)})"
        if chosen == "cawpe"
        else f"**{chosen}** over {', '.join(models)}"
    )
    if stack.get("noise_z") is not None:
        what = (f"the base model **{chosen}** alone" if chosen in models else name) + (
            ": of the candidates cross-validation could not separate from the best beyond the "
            "noise of the number of cases, the one with the lowest log loss (a combination "
            "before a single model)"
        )
    elif chosen in models:
        what = f"the base model **{chosen}** alone (no combination beat it by the margin in every inner fold)"
    else:
        what = name
    left_out = (
        f" Left out (predicted one class in a CV fold): {', '.join(stack['left_out'])}."
        if stack.get("left_out")
        else ""
    )
    return f"The stack is {what}, chosen by cross-validation on OOF predictions.{left_out}"


def shift_sentence(test: dict, oof: dict, n_test: int, n_oof: int) -> str:
    """One line when held-out accuracy falls far below OOF accuracy: beyond 0.05 and beyond
    twice the standard error of the difference of two independent proportions."""
    p_test, p_oof = test.get("accuracy"), oof.get("accuracy")
    if p_test is None or p_oof is None or not n_test or not n_oof:
        return ""
    gap = p_oof - p_test
    se = math.sqrt(p_test * (1 - p_test) / n_test + p_oof * (1 - p_oof) / n_oof)
    if gap <= max(0.05, 2 * se):
        return ""
    return (
        f"**Shift between training and test data: held-out accuracy {p_test:.3f} is far below "
        f"the OOF estimate {p_oof:.3f}** (gap {gap:.3f}, more than twice its standard error "
        f"{se:.3f} over {n_test} test and {n_oof} OOF epochs). The test data differ from the "
        "training data (another session, subject or device?), so OOF scores overstate what new "
        "data give: group the folds by session or subject (e.g. `dataset.uea.groups`, "
        "docs/data_formats.md) to estimate it."
    )


def _preamble(metrics: dict) -> list[str]:
    """Title, protocol, what OOF estimates, epochs scored, the stack and any shift warning."""
    info, test, oof = metrics["info"], metrics["test"], metrics["oof"]
    oof_words = ESTIMATE_WORDS.get(oof.get("estimate"), "OOF")
    return [
        "# Evaluation report",
        "",
        f"Protocol: **{metrics['protocol']}**. Reference model: **{info['reference_model']}**; top-level numbers are its **raw** predictions "
        f"(no smoothing); smoothed variants ({', '.join(info['smoothing_methods']) or 'none'}) are reported beside them. "
        f"Test = held-out subjects (fold -1). OOF = {oof_words}.",
        "",
        f"Epochs scored: {info['n_test_epochs']} test, {info['n_oof_epochs']} OOF; unlabelled epochs excluded: {info['n_unlabelled_excluded']}.",
        "",
        _stack_sentence(metrics.get("stack") or {}),
        "",
        *_nonempty(shift_sentence(test, oof, info["n_test_epochs"], info["n_oof_epochs"])),
    ]


def _headline(test: dict, oof: dict, info: dict) -> list[str]:
    """Headline metrics pooled and per subject, and why an interval is missing."""
    lines = [
        "## Headline (raw predictions)",
        "",
        f"Pooled over epochs; `[low, high]` is a {info['bootstrap_level']:.0%} subject bootstrap interval, given only with at least "
        f"{info['bootstrap_min_subjects']} subjects. Per subject: mean ± SD; median [q25, q75].",
        "",
        *_table(
            ["metric", "test", "test per subject", "oof", "oof per subject"],
            [
                [m, _pooled(test, m), _spread(test, m), _pooled(oof, m), _spread(oof, m)]
                for m in HEADLINE
            ],
        ),
    ]
    return lines + [
        f"- {split}: no interval: {scores['ci_reason']}"
        for split, scores in (("test", test), ("oof", oof))
        if scores.get("ci_reason")
    ]


def _per_class(test: dict, classes: list[str]) -> list[str]:
    return [
        "",
        *_table(
            ["class", "test F1", "test precision", "test recall", "test AUROC", "test ECE"],
            [
                [
                    c,
                    _fmt(test["f1_per_class"][c]),
                    _fmt(test["precision_per_class"][c]),
                    _fmt(test["recall_per_class"][c]),
                    _fmt(test["auroc_per_class"][c]),
                    _fmt(test["ece_per_class"][c]),
                ]
                for c in classes
            ],
        ),
        f"Log loss {_fmt(test['log_loss'])}, Brier score {_fmt(test['brier'])} (test).",
        "",
    ]


def _models(metrics: dict, hmm: bool) -> list[str]:
    """One row per model: test and OOF kappa and macro F1 (and test kappa after the HMM)."""
    return [
        "## Models",
        "",
        *_table(
            [
                "model",
                "test kappa",
                "test macro F1",
                *(["test kappa (HMM)"] if hmm else []),
                "oof kappa",
                "oof macro F1",
            ],
            [
                [
                    name,
                    _fmt(m.get("test", {}).get("cohen_kappa")),
                    _fmt(m.get("test", {}).get("macro_f1")),
                    *(
                        [
                            _fmt(
                                m.get("test", {})
                                .get("smoothing", {})
                                .get("hmm", {})
                                .get("cohen_kappa")
                            )
                        ]
                        if hmm
                        else []
                    ),
                    _fmt(m.get("oof", {}).get("cohen_kappa")),
                    _fmt(m.get("oof", {}).get("macro_f1")),
                ]
                for name, m in metrics["models"].items()
            ],
        ),
    ]


def render_report(metrics: dict, classes: list[str], targets: dict, plots: list[str]) -> str:
    """Markdown: protocol, headline metrics with per-subject spread (intervals only with enough
    subjects), paired comparisons and the claims they support, targets, smoothing, events with
    frozen operating points and the event filter, per-model table and the list of plots."""
    info, test, oof = metrics["info"], metrics["test"], metrics["oof"]
    lines = [*_preamble(metrics), *_headline(test, oof, info), *_per_class(test, classes)]
    lines += _comparisons(metrics)
    if targets:
        lines += ["## Targets", "", *_targets(test, targets)]
    variants = {"none (raw)": test, **{m: test["smoothing"][m] for m in test.get("smoothing", {})}}
    oof_variants = {"none (raw)": oof, **{m: oof["smoothing"][m] for m in oof.get("smoothing", {})}}
    if info["smoothing_methods"] or info["impossible_transitions"]:
        lines += _temporal(info, test, classes, variants, oof_variants)
    else:
        lines += NOT_TEMPORAL
    if "events" in test:
        lines += _events(metrics, variants)
    lines += _models(metrics, "hmm" in info["smoothing_methods"])
    lines += ["## Plots", "", *[f"- `{p}`" for p in plots], ""]
    return "\n".join(lines)


def _temporal(
    info: dict, test: dict, classes: list[str], variants: dict, oof_variants: dict
) -> list[str]:
    """The temporal smoothing section: each smoothing variant's scores and hypnogram structure."""
    lines = [
        "## Temporal smoothing (reference model)",
        "",
        f"Impossible transitions checked ({info['label_mapping']} labels): {', '.join(f'{a} -> {b}' for a, b in info['impossible_transitions']) or 'none'}; "
        f"per hour of test epochs (the scored reference has {_fmt(test['structure']['impossible_transitions_per_hour_true'])}/h). "
        "Edit distance: between the bout orders of the scored and predicted hypnograms (0 = same order, 1 = nothing in common).",
        "",
    ]
    return lines + _table(
        [
            "smoothing",
            "test kappa",
            "test macro F1",
            *[f"test F1 {c}" for c in classes],
            "oof kappa",
            "oof macro F1",
            "impossible transitions / h",
            "edit distance",
        ],
        [
            [
                name,
                _fmt(s["cohen_kappa"]),
                _fmt(s["macro_f1"]),
                *[_fmt(s["f1_per_class"][c]) for c in classes],
                _fmt(oof_variants[name]["cohen_kappa"]),
                _fmt(oof_variants[name]["macro_f1"]),
                _fmt(s["structure"]["impossible_transitions_per_hour"]),
                _fmt(s["structure"]["hypnogram_edit_distance"]),
            ]
            for name, s in variants.items()
        ],
    )
