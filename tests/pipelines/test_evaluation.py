"""evaluation in real Kedro sessions on hand-made predictions (sleep and seizure-like tasks)."""

import copy
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog

from epochstack.config import validate_parameters

pytestmark = pytest.mark.integration

SLEEP = ["NREM", "REM", "Wake"]
SEIZURE = ["background", "seizure"]
PROJECT_CONF = Path(__file__).resolve().parents[2] / "conf"


def hand_made_inputs(
    classes: list[str], transitions: np.ndarray, n_subjects=6, n_epochs=120, epoch_s=30.0, seed=0
):
    """Markov-chain label sequences, two test subjects, two CV folds and two models whose
    probabilities are noisy posteriors of the true label."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        state = 0
        for e in range(n_epochs):
            state = rng.choice(len(classes), p=transitions[state])
            rows.append(
                {
                    "epoch_id": f"rec{s}_{e:06d}",
                    "recording_id": f"rec{s}",
                    "subject_id": f"sub{s}",
                    "epoch_index": e,
                    "t_start_s": e * epoch_s,
                    "duration_s": epoch_s,
                    "label": classes[state],
                }
            )
    table = pd.DataFrame(rows)
    fold_of = {f"sub{s}": -1 if s < 2 else s % 2 for s in range(n_subjects)}
    folds = pd.DataFrame(
        {"epoch_id": table.epoch_id, "fold": table.subject_id.map(fold_of).astype("int64")}
    )
    codes = table.label.map(classes.index).to_numpy()
    log_prior = np.log(np.bincount(codes, minlength=len(classes)) / len(codes))
    predictions = []
    for strength, model in ((1.5, "hgb"), (2.5, "stack")):
        logits = rng.normal(0, 1, (len(table), len(classes))) + log_prior
        logits[np.arange(len(table)), codes] += strength
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        frame = pd.DataFrame(proba, columns=[f"proba_{c}" for c in classes])
        frame.insert(0, "epoch_id", table.epoch_id)
        frame.insert(1, "fold", folds.fold)
        frame.insert(2, "model", model)
        predictions.append(
            frame.assign(
                pred=np.asarray(classes)[proba.argmax(axis=1)],
                split=np.where(folds.fold == -1, "test", "oof"),
            )
        )
    return table, folds, pd.concat(predictions, ignore_index=True)


def events_of(table: pd.DataFrame, label: str) -> pd.DataFrame:
    rows = []
    for rid, r in table.groupby("recording_id"):
        edges = np.diff(np.r_[0, (r.label == label).to_numpy().astype(int), 0])
        for start, stop in zip(
            np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True
        ):
            rows.append(
                {
                    "recording_id": rid,
                    "subject_id": r.subject_id.iat[0],
                    "onset_s": r.t_start_s.iat[start],
                    "duration_s": r.t_start_s.iat[stop - 1] + 30.0 - r.t_start_s.iat[start],
                    "label": label,
                }
            )
    return pd.DataFrame(rows)


def features_of(table: pd.DataFrame, seed=0) -> pd.DataFrame:
    """Two numeric epoch features (one loosely tied to the label), as feature_engineering writes them."""
    rng = np.random.default_rng(seed)
    codes = pd.factorize(table.label, sort=True)[0]
    return pd.DataFrame(
        {
            "epoch_id": table.epoch_id,
            "acc_motion": codes + rng.normal(0, 1, len(table)),
            "hr_mean": rng.normal(70, 5, len(table)),
        }
    )


def run_evaluation(project, table, folds, predictions, events, monkeypatch, params=None):
    """Writes the inputs where the project's catalog reads them, runs `evaluation`, returns its outputs."""
    # One MLflow database per project copy, even when several run in one process.
    tracking_uri = f"sqlite:///{project.path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.chdir(project.path)
    catalog = DataCatalog.from_config(
        OmegaConfigLoader(str(project.path / "conf"), base_env="base", default_run_env="local")[
            "catalog"
        ]
    )
    inputs = {
        "epoch_table": table,
        "folds": folds,
        "model_predictions": predictions,
        "events": events,
        "features": features_of(table),
    }
    for name, data in inputs.items():
        catalog.save(name, data)
    # The protocol the models were trained under, as the stacking pipeline records it.
    protocol = ((params or {}).get("evaluation") or {}).get("protocol", "nested")
    (project.path / "data/08_reporting/stack_report.json").write_text(
        json.dumps(
            {
                "protocol": protocol,
                "selected": "logistic(C=0.1)",
                "stacked_models": ["hgb", "logreg"],
                "left_out": [],
            }
        )
    )
    project.run("evaluation", params=params)
    while mlflow.active_run():  # kedro-mlflow leaves its run on mlflow's stack after session.run
        mlflow.end_run()
    reporting = project.path / "data" / "08_reporting"
    mlflow.set_tracking_uri(tracking_uri)
    run = mlflow.search_runs(search_all_experiments=True).iloc[0]
    return json.loads((reporting / "metrics.json").read_text()), reporting, run


NO_EVENTS = pd.DataFrame(
    {
        c: pd.Series(dtype=t)
        for c, t in [
            ("recording_id", str),
            ("subject_id", str),
            ("onset_s", float),
            ("duration_s", float),
            ("label", str),
        ]
    }
)


def test_sleep_metrics_plots_report_and_mlflow(kedro_project, monkeypatch):
    transitions = np.array([[0.93, 0.04, 0.03], [0.08, 0.88, 0.04], [0.06, 0.0, 0.94]])
    table, folds, predictions = hand_made_inputs(SLEEP, transitions)
    metrics, reporting, run = run_evaluation(
        kedro_project, table, folds, predictions, NO_EVENTS, monkeypatch
    )

    for split in ("test", "oof"):
        for key in ("accuracy", "balanced_accuracy", "macro_f1", "cohen_kappa"):
            assert 0 < metrics[split][key] <= 1
            assert 0 < metrics["models"]["hgb"][split][key] <= 1
        assert set(metrics[split]["f1_per_class"]) == set(SLEEP)
    assert metrics["test"] == metrics["models"]["stack"]["test"]
    assert metrics["info"]["top_level_smoothing"] == "none" and "events" not in metrics["test"]
    # noisy but temporally independent errors: the HMM (fit on CV labels) must help
    assert metrics["test"]["smoothing"]["hmm"]["cohen_kappa"] > metrics["test"]["cohen_kappa"]
    assert metrics["models"]["hgb"]["test"]["cohen_kappa"] < metrics["test"]["cohen_kappa"]

    # honest numbers: protocol, per-subject spread, no interval with 2 test subjects, paired comparison
    assert (
        metrics["protocol"] == "nested"
        and metrics["oof"]["estimate"] == "oof_nested"
        and metrics["test"]["estimate"] == "held_out"
    )
    assert (
        metrics["stack"]["selected"] == "logistic(C=0.1)"
        and "The stack is **logistic(C=0.1)**" in (reporting / "report.md").read_text()
    )
    kappa = metrics["test"]["per_subject"]["cohen_kappa"]
    assert (
        kappa["n_subjects"] == 2
        and kappa["q25"] <= kappa["median"] <= kappa["q75"]
        and kappa["sd"] > 0
    )
    assert metrics["test"]["ci"] is None and "2 subjects < 10" in metrics["test"]["ci_reason"]
    assert metrics["info"]["impossible_transitions"] == [["Wake", "REM"]]
    comparison = metrics["comparisons"]["stack_vs_hgb"]["cohen_kappa"]
    assert (
        set(comparison) >= {"delta", "ci_low", "ci_high", "p_value"}
        and comparison["n_subjects"] == 6
    )  # 4 OOF + 2 test subjects
    assert comparison["ci_low"] is None and comparison["conclusion"].startswith(
        "no claim"
    )  # 6 subjects: no claim

    assert len(list((reporting / "plots").glob("*.png"))) >= 4
    confusion = pd.read_csv(reporting / "confusion.csv")
    assert (
        list(confusion.columns) == ["actual", "predicted"]
        and len(confusion) == (folds.fold == -1).sum()
    )
    report = (reporting / "report.md").read_text()
    assert "hmm" in report and "cohen_kappa" in report and "Paired comparisons" in report
    assert "## Temporal smoothing (reference model)" in report and "test kappa (HMM)" in report
    assert (
        "stack beats" not in report and "No comparison supports a claim" in report
    )  # 6 subjects: no claim

    assert run["metrics.test.macro_f1"] == pytest.approx(metrics["test"]["macro_f1"])
    assert run["metrics.models.hgb.oof.cohen_kappa"] == pytest.approx(
        metrics["models"]["hgb"]["oof"]["cohen_kappa"]
    )
    assert run["tags.evaluation.protocol"] == "nested"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run["run_id"])}
    assert {"plots", "report.md", "metrics.json", "per_subject_metrics.csv"} <= artifacts


def test_seizure_event_metrics_with_frozen_operating_points(kedro_project, monkeypatch):
    transitions = np.array([[0.985, 0.015], [0.15, 0.85]])
    table, folds, predictions = hand_made_inputs(SEIZURE, transitions, n_epochs=240, seed=1)
    metrics, reporting, _ = run_evaluation(
        kedro_project, table, folds, predictions, events_of(table, "seizure"), monkeypatch
    )

    events = metrics["test"]["events"]
    assert metrics["info"]["positive_class"] == "seizure"
    assert 0 < events["sensitivity"] <= 1 and events["fa_per_24h"] >= 0
    assert 0 <= events["taes"]["sensitivity"] <= 1 and "f1" in events["iou"]
    assert set(events["at_fa"]) == {"10", "5", "2_5", "1"}
    for target, point in events["at_fa"].items():  # thresholds chosen on OOF, frozen for test
        assert point["threshold"] == metrics["oof"]["events"]["at_fa"][target]["threshold"]
        assert {"sensitivity", "fa_per_24h"} <= set(point)
    hysteresis = metrics["models"]["stack"]["operating_points"]["hysteresis"]
    assert (
        hysteresis["tau_off"] <= hysteresis["tau_on"]
        and metrics["models"]["stack"]["operating_points"]["chosen_on"] == "oof"
    )
    assert "fa_per_24h" in metrics["test"]["smoothing"]["hysteresis"]["events"]
    event_filter = metrics["test"]["events"]["event_filter"]
    assert {"before", "after"} <= set(event_filter) and event_filter["n_kept"] <= event_filter[
        "n_detections"
    ]
    assert event_filter["after"]["fa_per_24h"] <= event_filter["before"]["fa_per_24h"]
    assert "event_filter" in metrics["oof"]["events"]
    assert (reporting / "plots" / "sensitivity_vs_fa.png").exists()
    report = (reporting / "report.md").read_text()
    assert "FA/24h" in report and "threshold (from OOF)" in report and "event filter" in report


def test_aasm_labels_and_the_non_nested_protocol(kedro_project, monkeypatch):
    aasm = ["N1", "N2", "N3", "REM", "W"]
    transitions = np.full((5, 5), 0.01) + np.eye(5) * 0.9
    transitions /= transitions.sum(axis=1, keepdims=True)
    table, folds, predictions = hand_made_inputs(aasm, transitions, n_epochs=200, seed=2)
    params = {"dataset": {"label_mapping": "aasm"}, "evaluation": {"protocol": "non_nested"}}
    metrics, reporting, run = run_evaluation(
        kedro_project, table, folds, predictions, NO_EVENTS, monkeypatch, params
    )

    assert metrics["info"]["impossible_transitions"] == [["W", "REM"]]  # AASM default: W -> REM
    assert (
        metrics["models"]["hgb"]["test"]["structure"]["impossible_transition_share"] > 0
    )  # noisy predictions jump W -> REM
    assert (
        metrics["protocol"] == "non_nested" and metrics["oof"]["estimate"] == "oof_selection_biased"
    )
    assert metrics["info"]["comparisons"]["splits"] == [
        "test"
    ]  # biased OOF subjects stay out of comparisons
    assert metrics["comparisons"]["stack_vs_hgb"]["cohen_kappa"]["n_subjects"] == 2
    assert "selection-biased" in (reporting / "report.md").read_text()
    assert run["tags.evaluation.oof_estimate"] == "oof_selection_biased"


def test_unknown_class_names_in_parameters_are_warned_about(caplog):
    from epochstack.evaluation.context import forbidden_transitions

    evaluation = OmegaConfigLoader(str(PROJECT_CONF), base_env="base", default_run_env="local")[
        "parameters"
    ]["evaluation"]
    aasm = ["N1", "N2", "N3", "REM", "W"]
    with caplog.at_level("WARNING"):
        assert forbidden_transitions(evaluation, "aasm", aasm) == [("W", "REM")]
        assert not caplog.messages
        # the three_class default names Wake, which AASM labels call W: warned about, by name
        assert forbidden_transitions(evaluation, "three_class", aasm) == []
    assert (
        len(caplog.messages) == 1
        and "['Wake']" in caplog.messages[0]
        and "three_class" in caplog.messages[0]
    )


def test_operating_points_never_read_the_test_split():
    from epochstack.pipelines.evaluation import nodes

    table, folds, predictions = hand_made_inputs(
        SEIZURE, np.array([[0.985, 0.015], [0.15, 0.85]]), n_epochs=240, seed=1
    )
    events = events_of(table, "seizure")
    evaluation = OmegaConfigLoader(str(PROJECT_CONF), base_env="base", default_run_env="local")[
        "parameters"
    ]["evaluation"]

    def chosen(predictions, table, events):
        scoring, n_unlabelled = nodes.build_scoring_table(predictions, table, evaluation)
        context = nodes.evaluation_context(
            scoring, n_unlabelled, table, events, evaluation, "three_class", {"protocol": "nested"}
        )
        return nodes.choose_operating_points(scoring, context, events, evaluation)

    original = chosen(predictions, table, events)
    test_ids = set(folds.epoch_id[folds.fold == -1])
    scrambled = predictions.copy()
    is_test = scrambled.epoch_id.isin(test_ids)
    rng = np.random.default_rng(0)
    scrambled.loc[is_test, "proba_seizure"] = rng.random(is_test.sum())
    scrambled.loc[is_test, "proba_background"] = 1 - scrambled.loc[is_test, "proba_seizure"]
    relabelled = table.assign(label=np.where(table.epoch_id.isin(test_ids), "seizure", table.label))
    test_recordings = set(table.recording_id[table.epoch_id.isin(test_ids)])
    assert (
        chosen(scrambled, relabelled, events[~events.recording_id.isin(test_recordings)])
        == original
    )
    assert set(original) == {"hgb", "stack"} and set(original["stack"]["at_fa"]) == {
        "10",
        "5",
        "2_5",
        "1",
    }


def test_hmm_is_fit_on_training_labels_only():
    from epochstack.evaluation.smoothing import hmm_models

    table, folds, _ = hand_made_inputs(
        SLEEP, np.array([[0.93, 0.04, 0.03], [0.08, 0.88, 0.04], [0.06, 0.0, 0.94]])
    )
    smoothing = {"hmm": {"pseudo_count": 1.0, "self_transition_pseudo_count": 0.0}}
    fold_of = folds.set_index("epoch_id")["fold"].reindex(table.epoch_id).to_numpy()

    def fitted(fold_to_relabel):
        relabelled = table.copy()
        relabelled.loc[fold_of == fold_to_relabel, "label"] = "REM"
        return hmm_models(relabelled, folds, smoothing)

    original = hmm_models(table, folds, smoothing)
    for fold, (transitions, priors) in fitted(-1).items():  # test labels are never read
        assert np.allclose(transitions, original[fold][0]) and np.allclose(
            priors, original[fold][1]
        )
    fold0_changed = fitted(0)  # fold 0's labels steer the models of fold 1 and of the test set only
    assert np.allclose(fold0_changed[0][0], original[0][0])
    assert not np.allclose(fold0_changed[1][0], original[1][0]) and not np.allclose(
        fold0_changed[-1][0], original[-1][0]
    )


def test_a_wrong_evaluation_parameter_is_named():
    from epochstack.errors import ParameterError
    from epochstack.pipelines.evaluation import nodes

    table, folds, predictions = hand_made_inputs(
        SLEEP, np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.1, 0.0, 0.9]])
    )
    evaluation = OmegaConfigLoader(str(PROJECT_CONF), base_env="base", default_run_env="local")[
        "parameters"
    ]["evaluation"]
    scoring, n_unlabelled = nodes.build_scoring_table(predictions, table, evaluation)
    with pytest.raises(ParameterError, match="evaluation.protocol"):
        validate_parameters({"evaluation": {**evaluation, "protocol": "nestd"}})
    for path, value, name in (
        (
            ("smoothing", "hysteresis", "objective"),
            "auc",
            "evaluation.smoothing.hysteresis.objective",
        ),
    ):
        wrong = copy.deepcopy(evaluation)
        target = wrong
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(ParameterError, match=name):
            nodes.evaluation_context(
                scoring,
                n_unlabelled,
                table,
                NO_EVENTS,
                wrong,
                "three_class",
                {"protocol": "nested"},
            )
