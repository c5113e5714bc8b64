"""A short markdown report of the metrics dictionary written by the evaluation pipeline."""

from __future__ import annotations

import math

HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1", "cohen_kappa")


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


def _interval(scores: dict, name: str) -> str:
    ci = scores.get("ci", {}).get(name)
    return f"{_fmt(scores.get(name))} [{_fmt(ci['low'])}, {_fmt(ci['high'])}]" if ci else _fmt(scores.get(name))


def _targets(scores: dict, targets: dict) -> list[str]:
    rows = []
    for name, threshold in targets.items():
        if isinstance(threshold, dict):
            rows += [[f"{name}.{c}", _fmt(scores.get(name, {}).get(c)), f">= {t}", _passes(scores.get(name, {}).get(c), t)] for c, t in threshold.items()]
        else:
            rows.append([name, _fmt(scores.get(name)), f">= {threshold}", _passes(scores.get(name), threshold)])
    return _table(["target", "test (stack, raw)", "goal", "met"], rows)


def _passes(value, threshold) -> str:
    return "yes" if value is not None and math.isfinite(value) and value >= threshold else "**no**"


def render_report(metrics: dict, classes: list[str], targets: dict, plots: list[str]) -> str:
    """Markdown: headline test metrics with subject-bootstrap intervals, targets, smoothing
    comparison, event metrics (detection tasks), per-model table and the list of plots."""
    info = metrics["info"]
    test, oof = metrics["test"], metrics["oof"]
    lines = [
        "# Evaluation report",
        "",
        f"Reference model: **{info['reference_model']}**. Top-level `test.*` / `oof.*` metrics are its **raw** "
        f"predictions (no smoothing); smoothed variants ({', '.join(info['smoothing_methods']) or 'none'}) are reported beside them "
        "under `*.smoothing.<method>.*`. Test = held-out subjects (fold -1); OOF = cross-validation epochs, "
        f"each predicted by a model that never saw its subject. Intervals: {info['bootstrap_level']:.0%} bootstrap over subjects.",
        "",
        f"Epochs scored: {info['n_test_epochs']} test, {info['n_oof_epochs']} OOF; unlabelled epochs excluded: {info['n_unlabelled_excluded']}.",
        "",
        "## Headline (raw predictions)",
        "",
        *_table(["metric", "test", "oof"], [[m, _interval(test, m), _interval(oof, m)] for m in HEADLINE]),
        *_table(["class", "test F1", "test precision", "test recall", "test AUROC", "test ECE"], [
            [c, _fmt(test["f1_per_class"][c]), _fmt(test["precision_per_class"][c]), _fmt(test["recall_per_class"][c]),
             _fmt(test["auroc_per_class"][c]), _fmt(test["ece_per_class"][c])] for c in classes
        ]),
        f"Log loss {_fmt(test['log_loss'])}, Brier score {_fmt(test['brier'])} (test).",
        "",
    ]
    if targets:
        lines += ["## Targets", "", *_targets(test, targets)]
    lines += ["## Temporal smoothing (reference model)", ""]
    variants = {"none (raw)": test, **{m: test["smoothing"][m] for m in test.get("smoothing", {})}}
    oof_variants = {"none (raw)": oof, **{m: oof["smoothing"][m] for m in oof.get("smoothing", {})}}
    lines += _table(
        ["smoothing", "test kappa", "test macro F1", *[f"test F1 {c}" for c in classes], "oof kappa", "oof macro F1", "impossible transitions", "edit distance"],
        [[name, _fmt(s["cohen_kappa"]), _fmt(s["macro_f1"]), *[_fmt(s["f1_per_class"][c]) for c in classes],
          _fmt(oof_variants[name]["cohen_kappa"]), _fmt(oof_variants[name]["macro_f1"]),
          _fmt(s["structure"]["impossible_transition_share"]), _fmt(s["structure"]["hypnogram_edit_distance"])] for name, s in variants.items()],
    )
    if "events" in test:
        lines += ["## Events (detection)", "", f"Positive class: **{info['positive_class']}**. Any-overlap scoring by `timescoring` (szCORE); TAES and IoU matching as in docs/metrics.md.", ""]
        rows = []
        for name, s in variants.items():
            ev = s["events"]
            rows.append([name, _fmt(ev["sensitivity"]), _fmt(ev["precision"]), _fmt(ev["f1"]), _fmt(ev["fa_per_24h"]),
                         _fmt(ev["taes"]["sensitivity"]), _fmt(ev["taes"]["fa_per_24h"]), _fmt(ev["iou"]["f1"])])
        lines += _table(["smoothing", "sensitivity", "precision", "F1", "FA/24h", "TAES sensitivity", "TAES FA/24h", "IoU F1"], rows)
        sweep = test["events"].get("sensitivity_at_fa", {})
        lines += _table(["FA/24h target", "best test sensitivity"], [[k.removeprefix("sensitivity_at_").removesuffix("fa").replace("_", "."), _fmt(v)] for k, v in sweep.items()])
    lines += ["## Models", ""]
    lines += _table(
        ["model", "test kappa", "test macro F1", "test kappa (HMM)", "oof kappa", "oof macro F1"],
        [[name, _fmt(m.get("test", {}).get("cohen_kappa")), _fmt(m.get("test", {}).get("macro_f1")),
          _fmt(m.get("test", {}).get("smoothing", {}).get("hmm", {}).get("cohen_kappa")),
          _fmt(m.get("oof", {}).get("cohen_kappa")), _fmt(m.get("oof", {}).get("macro_f1"))] for name, m in metrics["models"].items()],
    )
    lines += ["## Plots", "", *[f"- `{p}`" for p in plots], ""]
    return "\n".join(lines)
