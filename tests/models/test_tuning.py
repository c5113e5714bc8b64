"""Optuna on CV folds only: resumable budgets, no replayed parameters, shared SQLite studies."""

import subprocess
import sys
import textwrap

import numpy as np
import optuna
import pandas as pd
import pytest

from epochstack.errors import InputDataError
from epochstack.models.registry import build_base_model
from epochstack.models.tuning import (
    cv_objective,
    finished_trials,
    open_study,
    prune_if_repeated,
    redact,
    resolve_storage,
    run_study,
    suggest_params,
)
from tests.models.conftest import CLASSES, informative_data

SPACE = {"C": {"type": "float", "low": 1e-3, "high": 10.0, "log": True}}
COLUMNS = [f"f{j}" for j in range(6)]


def logreg(params):
    return build_base_model(
        "logreg", {"estimator": "logreg"}, CLASSES, tuned=params, columns=COLUMNS
    )


def test_objective_refuses_test_rows():
    data, cv, test = informative_data(n_subjects=10, n_test_subjects=2)
    with pytest.raises(ValueError, match="fold -1"):
        cv_objective(logreg, data, np.concatenate([cv, test]), SPACE)


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


def test_a_resumed_study_does_not_replay_parameters(tmp_path):
    """A killed trial (left RUNNING) and a reopened study: the sampler draws new parameters."""
    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = open_study(storage, "s", seed=7, n_startup_trials=10)
    run_study(study, lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    study.ask(
        {"x": optuna.distributions.FloatDistribution(0, 1)}
    )  # a trial whose process was killed
    resumed = open_study(storage, "s", seed=7, n_startup_trials=10)
    run_study(resumed, lambda t: t.suggest_float("x", 0, 1), n_trials=6)
    xs = [t.params["x"] for t in resumed.get_trials(states=(optuna.trial.TrialState.COMPLETE,))]
    assert len(xs) == 6 and len(set(xs)) == 6


def test_processes_opening_a_study_at_once_draw_different_parameters(tmp_path):
    """Two processes open one study at the same moment with the same seed (no trial yet, so
    neither sees the other): their draws differ, and a lone process draws the same every run."""
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    storage = f"sqlite:///{tmp_path}/shared.db"
    first, second = (open_study(storage, "s", seed=3, n_startup_trials=4) for _ in range(2))
    drawn = [study.ask(space).params["x"] for _ in range(3) for study in (first, second)]
    assert len(set(drawn)) == len(drawn)
    alone = open_study(f"sqlite:///{tmp_path}/alone.db", "s", seed=3, n_startup_trials=4)
    again = open_study(f"sqlite:///{tmp_path}/again.db", "s", seed=3, n_startup_trials=4)
    assert [alone.ask(space).params["x"] for _ in range(6)] == [
        again.ask(space).params["x"] for _ in range(6)
    ]
    assert sorted(drawn) == sorted(
        t.params["x"] for t in optuna.load_study(study_name="s", storage=storage).trials
    )


def test_a_trial_repeating_a_running_trial_is_pruned(tmp_path):
    study = open_study(f"sqlite:///{tmp_path}/o.db", "s", seed=0)
    study.enqueue_trial({"x": 0.5})
    study.enqueue_trial({"x": 0.5})
    running = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    prune_if_repeated(running)  # alone with its parameters: goes on
    repeat = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    with pytest.raises(optuna.TrialPruned):
        prune_if_repeated(repeat)


def test_each_fold_is_reported_for_pruning(tmp_path):
    data, cv, _ = informative_data(n_folds=4)
    study = open_study(f"sqlite:///{tmp_path}/o.db", "cv", seed=0)
    run_study(study, cv_objective(logreg, data, cv, SPACE), n_trials=3)
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        assert sorted(trial.intermediate_values) == [0, 1, 2, 3]
        assert len(trial.user_attrs["fold_macro_f1"]) == 4


def test_storage_from_the_environment_and_redacted(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert resolve_storage("sqlite:///optuna.db") == f"sqlite:///{tmp_path / 'optuna.db'}"
    monkeypatch.setenv("OPTUNA_STORAGE", "postgresql://team:s3cret@db:5432/optuna")
    assert resolve_storage("sqlite:///optuna.db") == "postgresql://team:s3cret@db:5432/optuna"
    assert redact(resolve_storage(None)) == "postgresql://team:***@db:5432/optuna"


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
    run_study(open_study(storage, "shared", seed=0, n_startup_trials=3), objective, n_trials=8)
    open(out, "w").write(",".join(map(str, mine)))
    """
)


def test_two_processes_share_one_sqlite_study(tmp_path):
    """Two processes with the same seed on one study: the union of their trials, none repeated."""
    storage = f"sqlite:///{tmp_path}/shared.db"
    outs = [tmp_path / f"p{i}.txt" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, storage, str(out)]) for out in outs]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    numbers = [[int(n) for n in out.read_text().split(",") if n] for out in outs]
    study = optuna.load_study(study_name="shared", storage=storage)
    stored = pd.Series([t.number for t in study.trials])
    assert stored.is_unique
    assert sorted(numbers[0] + numbers[1]) == sorted(stored), (
        "the study holds exactly the union of both processes' trials"
    )
    complete = [t.params["x"] for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == len(set(complete)), "no parameters evaluated twice"
    assert (
        len(
            [
                t
                for t in study.trials
                if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
            ]
        )
        >= 8
    )


def test_search_spaces_are_read_from_parameters(tmp_path):
    study = open_study(f"sqlite:///{tmp_path}/o.db", "kinds", seed=0)
    space = {
        "a": {"type": "int", "low": 1, "high": 3},
        "b": {"type": "categorical", "choices": ["x", "y"]},
        **SPACE,
    }
    params = suggest_params(study.ask(), space)
    assert set(params) == {"a", "b", "C"} and params["b"] in ("x", "y") and 1 <= params["a"] <= 3
    with pytest.raises(InputDataError, match="unknown type"):
        suggest_params(study.ask(), {"d": {"type": "normal"}})
