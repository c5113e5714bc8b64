"""evaluation in real Kedro sessions on hand-made predictions (sleep and seizure-like tasks)."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog

pytestmark = pytest.mark.integration

SLEEP = ["NREM", "REM", "Wake"]
SEIZURE = ["background", "seizure"]


def hand_made_inputs(classes: list[str], transitions: np.ndarray, n_subjects=6, n_epochs=120, epoch_s=30.0, seed=0):
    """Markov-chain label sequences, two test subjects, two CV folds and two models whose
    probabilities are noisy posteriors of the true label."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        state = 0
        for e in range(n_epochs):
            state = rng.choice(len(classes), p=transitions[state])
            rows.append({"epoch_id": f"rec{s}_{e:06d}", "recording_id": f"rec{s}", "subject_id": f"sub{s}", "epoch_index": e,
                         "t_start_s": e * epoch_s, "duration_s": epoch_s, "label": classes[state]})
    table = pd.DataFrame(rows)
    fold_of = {f"sub{s}": -1 if s < 2 else s % 2 for s in range(n_subjects)}
    folds = pd.DataFrame({"epoch_id": table.epoch_id, "fold": table.subject_id.map(fold_of).astype("int64")})
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
        predictions.append(frame.assign(pred=np.asarray(classes)[proba.argmax(axis=1)], split=np.where(folds.fold == -1, "test", "oof")))
    return table, folds, pd.concat(predictions, ignore_index=True)


def events_of(table: pd.DataFrame, label: str) -> pd.DataFrame:
    rows = []
    for rid, r in table.groupby("recording_id"):
        edges = np.diff(np.r_[0, (r.label == label).to_numpy().astype(int), 0])
        for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
            rows.append({"recording_id": rid, "subject_id": r.subject_id.iat[0], "onset_s": r.t_start_s.iat[start],
                         "duration_s": r.t_start_s.iat[stop - 1] + 30.0 - r.t_start_s.iat[start], "label": label})
    return pd.DataFrame(rows)


def run_evaluation(project, table, folds, predictions, events, monkeypatch):
    """Writes the inputs where the project's catalog reads them, runs `evaluation`, returns its outputs."""
    # One MLflow database per project copy, even when several run in one process.
    tracking_uri = f"sqlite:///{project.path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.chdir(project.path)
    catalog = DataCatalog.from_config(OmegaConfigLoader(str(project.path / "conf"), base_env="base", default_run_env="local")["catalog"])
    for name, data in (("epoch_table", table), ("folds", folds), ("model_predictions", predictions), ("events", events)):
        catalog.save(name, data)
    project.run("evaluation")
    while mlflow.active_run():  # kedro-mlflow leaves its run on mlflow's stack after session.run
        mlflow.end_run()
    reporting = project.path / "data" / "08_reporting"
    mlflow.set_tracking_uri(tracking_uri)
    run = mlflow.search_runs(search_all_experiments=True).iloc[0]
    return json.loads((reporting / "metrics.json").read_text()), reporting, run


def test_sleep_metrics_plots_report_and_mlflow(kedro_project, monkeypatch):
    transitions = np.array([[0.93, 0.04, 0.03], [0.08, 0.88, 0.04], [0.06, 0.0, 0.94]])
    table, folds, predictions = hand_made_inputs(SLEEP, transitions)
    empty_events = pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                                 [("recording_id", str), ("subject_id", str), ("onset_s", float), ("duration_s", float), ("label", str)]})
    metrics, reporting, run = run_evaluation(kedro_project, table, folds, predictions, empty_events, monkeypatch)

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

    assert len(list((reporting / "plots").glob("*.png"))) >= 4
    confusion = pd.read_csv(reporting / "confusion.csv")
    assert list(confusion.columns) == ["actual", "predicted"] and len(confusion) == (folds.fold == -1).sum()
    report = (reporting / "report.md").read_text()
    assert "hmm" in report and "cohen_kappa" in report

    assert run["metrics.test.macro_f1"] == pytest.approx(metrics["test"]["macro_f1"])
    assert run["metrics.models.hgb.oof.cohen_kappa"] == pytest.approx(metrics["models"]["hgb"]["oof"]["cohen_kappa"])
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run["run_id"])}
    assert {"plots", "report.md", "metrics.json", "per_subject_metrics.csv"} <= artifacts


def test_seizure_event_metrics(kedro_project, monkeypatch):
    transitions = np.array([[0.985, 0.015], [0.15, 0.85]])
    table, folds, predictions = hand_made_inputs(SEIZURE, transitions, n_epochs=240, seed=1)
    metrics, reporting, _ = run_evaluation(kedro_project, table, folds, predictions, events_of(table, "seizure"), monkeypatch)

    events = metrics["test"]["events"]
    assert metrics["info"]["positive_class"] == "seizure"
    assert 0 < events["sensitivity"] <= 1 and events["fa_per_24h"] >= 0
    assert 0 <= events["taes"]["sensitivity"] <= 1 and "f1" in events["iou"]
    assert {"sensitivity_at_10fa", "sensitivity_at_1fa"} <= set(events["sensitivity_at_fa"])
    assert "fa_per_24h" in metrics["test"]["smoothing"]["hysteresis"]["events"]
    assert (reporting / "plots" / "sensitivity_vs_fa.png").exists()
    assert "FA/24h" in (reporting / "report.md").read_text()


def test_hmm_is_fit_on_training_labels_only():
    from epochstack.pipelines.evaluation.nodes import hmm_models

    table, folds, _ = hand_made_inputs(SLEEP, np.array([[0.93, 0.04, 0.03], [0.08, 0.88, 0.04], [0.06, 0.0, 0.94]]))
    smoothing = {"hmm": {"pseudo_count": 1.0, "self_transition_pseudo_count": 0.0}}
    fold_of = folds.set_index("epoch_id")["fold"].reindex(table.epoch_id).to_numpy()

    def fitted(fold_to_relabel):
        relabelled = table.copy()
        relabelled.loc[fold_of == fold_to_relabel, "label"] = "REM"
        return hmm_models(relabelled, folds, smoothing)

    original = hmm_models(table, folds, smoothing)
    for fold, (transitions, priors) in fitted(-1).items():  # test labels are never read
        assert np.allclose(transitions, original[fold][0]) and np.allclose(priors, original[fold][1])
    fold0_changed = fitted(0)  # fold 0's labels steer the models of fold 1 and of the test set only
    assert np.allclose(fold0_changed[0][0], original[0][0])
    assert not np.allclose(fold0_changed[1][0], original[1][0]) and not np.allclose(fold0_changed[-1][0], original[-1][0])
