"""Two `kedro run --pipelines stacking` processes, as on two machines, tuning in one shared study.

Each process has its own copy of the project (data, outputs, MLflow database); they share only
the Optuna storage, given as the OPTUNA_STORAGE environment variable (a SQLite file here, a
PostgreSQL URL on a cluster: docs/scaling.md).
"""

import json
import os
import re
import shutil
import subprocess
import sys

import mlflow
import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.conftest import TINY_SLEEP, KedroProject, deep_merge

pytestmark = pytest.mark.integration

N_TRIALS = 16
SHARED = {
    "stacking": {
        "enabled": ["logreg"],
        "base_models": {
            "logreg": {
                "search": {
                    "enabled": True,
                    "n_trials": N_TRIALS,
                    "n_startup_trials": 4,
                    "timeout_s": 600,
                }
            }
        },
    },
    "evaluation": {
        "protocol": "non_nested"
    },  # one study on the CV folds (nested: one per outer fold)
}


def test_two_stacking_processes_share_one_study(tmp_path):
    """Started at the same moment on a loaded machine (a busy process beside them): no
    parameters evaluated twice, the budget the study's, every trial logged."""
    first = KedroProject(tmp_path / "first")
    first.run(["data_engineering", "feature_engineering"], TINY_SLEEP)
    (first.path / "conf/shared").mkdir()
    (first.path / "conf/shared/parameters.yml").write_text(
        yaml.safe_dump(deep_merge(TINY_SLEEP, SHARED))
    )
    second = tmp_path / "second"
    shutil.copytree(first.path, second)

    storage = f"sqlite:///{tmp_path / 'shared-optuna.db'}"
    kedro = os.path.join(os.path.dirname(sys.executable), "kedro")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {
        "OPTUNA_STORAGE": storage,
        "COLUMNS": "250",
    }
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        procs = [
            subprocess.Popen(
                [kedro, "run", "--pipelines", "stacking", "--env", "shared"],
                cwd=path,
                env=env,
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
            )
            for path, log in zip((first.path, second), logs, strict=True)
        ]
        codes = [p.wait(timeout=900) for p in procs]
    finally:
        busy.kill()
    assert codes == [0, 0], [log.read_text()[-3000:] for log in logs]

    # both processes ran trials of the same study, none of them found the budget already spent
    started = [
        re.findall(r"Study (\S+): running (\d+) of (\d+) trials", " ".join(log.read_text().split()))
        for log in logs
    ]
    assert all(len(s) == 1 for s in started), started
    (name_a, todo_a, _), (name_b, todo_b, _) = started[0][0], started[1][0]
    assert name_a == name_b and int(todo_a) > 0 and int(todo_b) > 0

    study = optuna.load_study(study_name=name_a, storage=storage)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert N_TRIALS <= len(finished) <= N_TRIALS + 1, (
        "the budget is the study's, not each process's"
    )
    complete = [
        json.dumps(t.params, sort_keys=True) for t in study.trials if t.state == TrialState.COMPLETE
    ]
    assert len(complete) == len(set(complete)), "no parameters evaluated twice"
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]

    # the process that finished last logged the union of both processes' trials to its MLflow run
    logged = []
    for path in (first.path, second):
        client = mlflow.MlflowClient(f"sqlite:///{path / 'mlflow.db'}")
        runs = client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            f"tags.`optuna.study` = '{name_a}'",
        )
        logged.append(sorted(int(r.data.tags["optuna.trial"]) for r in runs))
    assert max(logged, key=len) == sorted(t.number for t in finished)
    assert min(len(x) for x in logged) >= 1
