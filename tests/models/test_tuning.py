"""Optuna on CV folds only: resumable budgets, per-fold pruning reports, shared SQLite studies."""

import subprocess
import sys
import textwrap

import numpy as np
import optuna
import pandas as pd
import pytest

from epochstack.models.registry import make_estimator
from epochstack.models.tuning import cv_objective, finished_trials, open_study, run_study
from tests.models.test_oof import CLASSES, informative_data

SPACE = {"C": {"type": "float", "low": 1e-3, "high": 10.0, "log": True}}


def test_objective_refuses_test_rows():
    X, y, folds = informative_data()
    folds = folds.copy()
    folds[-5:] = -1
    with pytest.raises(ValueError, match="fold -1"):
        cv_objective(lambda p: make_estimator("logreg", p), X, y, folds, CLASSES, SPACE)


def test_tuning_node_never_receives_test_rows(monkeypatch, tmp_path):
    """The node hands the objective CV rows only: poisoned test rows never arrive."""
    from epochstack.pipelines.stacking import nodes
    from tests.models.test_stacking import tiny_stacking_data

    features, epoch_table, folds = tiny_stacking_data()
    test_ids = set(folds.epoch_id[folds.fold == -1])
    features.loc[features.epoch_id.isin(test_ids), features.columns[1:]] = np.inf
    seen = {}
    real = nodes.cv_objective

    def spy(build, X, y, fold, *args, **kwargs):
        seen.update(X=X, fold=fold)
        return real(build, X, y, fold, *args, **kwargs)

    monkeypatch.setattr(nodes, "cv_objective", spy)
    base_model = {"estimator": "logreg", "params": {}, "search": {"enabled": True, "n_trials": 2, "space": SPACE}}
    stacking = {"seed": 0, "imbalance": {}}
    best = nodes.tune_base_model(features, epoch_table, folds, base_model, stacking, f"sqlite:///{tmp_path}/o.db", 1, model_name="logreg")
    assert set(best) == {"C"}
    assert (seen["fold"] >= 0).all() and np.isfinite(seen["X"]).all()
    assert len(seen["fold"]) == (folds.fold >= 0).sum()


def test_killed_search_resumes_with_the_remaining_budget(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    calls = []

    def objective(trial):
        calls.append(trial.number)
        return trial.suggest_float("x", 0, 1)

    run_study(open_study(storage, "s", seed=0), objective, n_trials=3)
    study = open_study(storage, "s", seed=0)  # a new process reopening the study
    best = run_study(study, objective, n_trials=5)
    assert len(calls) == 5 and finished_trials(study) == 5
    assert best == study.best_params
    run_study(open_study(storage, "s", seed=0), objective, n_trials=5)
    assert len(calls) == 5, "a finished budget runs nothing"


def test_each_fold_is_reported_for_pruning(tmp_path):
    X, y, folds = informative_data(n_folds=4)
    study = open_study(f"sqlite:///{tmp_path}/o.db", "cv", seed=0)
    run_study(study, cv_objective(lambda p: make_estimator("logreg", p), X, y, folds, CLASSES, SPACE), n_trials=3)
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        assert sorted(trial.intermediate_values) == [0, 1, 2, 3]
        assert len(trial.user_attrs["fold_macro_f1"]) == 4


WORKER = textwrap.dedent(
    """
    import sys, time
    from epochstack.models.tuning import open_study, run_study
    storage, out = sys.argv[1], sys.argv[2]
    mine = []
    def objective(trial):
        time.sleep(0.05)
        mine.append(trial.number)
        return trial.suggest_float("x", 0, 1)
    run_study(open_study(storage, "shared", seed=int(sys.argv[3])), objective, n_trials=8)
    open(out, "w").write(",".join(map(str, mine)))
    """
)


def test_two_processes_share_one_sqlite_study(tmp_path):
    storage = f"sqlite:///{tmp_path}/shared.db"
    outs = [tmp_path / f"p{i}.txt" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, storage, str(out), str(i)]) for i, out in enumerate(outs)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    numbers = [[int(n) for n in out.read_text().split(",") if n] for out in outs]
    study = optuna.load_study(study_name="shared", storage=storage)
    stored = pd.Series([t.number for t in study.trials])
    assert stored.is_unique
    assert sorted(numbers[0] + numbers[1]) == sorted(stored), "the study holds exactly the union of both processes' trials"
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert len(stored) >= 8
