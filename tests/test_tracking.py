"""MLflow runs: names, dead runs marked KILLED, databases found from notebooks and DVC copies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap

import mlflow
import pytest
from mlflow import MlflowClient

from epochstack.evaluation.summary import headline_metrics
from epochstack.tracking import (
    HOST_TAG,
    PID_TAG,
    main_project_root,
    mark_dead_runs_killed,
    project_sqlite_url,
    run_name,
    table_digest,
)
from tests.conftest import TINY_SLEEP, mlflow_template_db


def test_run_names_say_task_pipelines_and_env(monkeypatch):
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    assert run_name("sleep", None, ["__default__"]) == "sleep:training@local"
    assert (
        run_name("edf", "sleep_edf", ["stacking", "evaluation"])
        == "edf:stacking+evaluation@sleep_edf"
    )
    monkeypatch.setenv("DVC_EXP_NAME", "c-0.03")
    assert run_name("sleep", "local", ["stacking"]) == "sleep:stacking@local [c-0.03]"


def test_databases_resolve_from_notebooks_and_dvc_experiment_copies(tmp_path, monkeypatch):
    project = tmp_path / "project"
    copy = project / ".dvc" / "tmp" / "exps" / "tmpab12cd"
    for root in (project, copy):
        (root / "notebooks").mkdir(parents=True)
        (root / "pyproject.toml").write_text(
            '[tool.kedro]\npackage_name = "epochstack"\nproject_name = "x"\nkedro_init_version = "1.7.0"\n'
        )
    monkeypatch.chdir(project / "notebooks")
    assert project_sqlite_url("mlflow.db") == f"sqlite:///{project.resolve()}/mlflow.db"
    monkeypatch.chdir(copy)
    assert main_project_root() == project.resolve()
    assert project_sqlite_url("optuna.db") == f"sqlite:///{project.resolve()}/optuna.db"
    assert main_project_root(project) == project.resolve()


def test_headline_metrics_keep_the_summary_and_leave_the_long_tail_to_the_json():
    document = {
        "protocol": "nested",
        "info": {"n_test_epochs": 10},
        "test": {
            "cohen_kappa": 0.8,
            "macro_f1": 0.7,
            "estimate": "held_out",
            "ci": None,
            "f1_per_class": {"REM": 0.5},
            "events": {"sensitivity": 0.9, "at_fa": {"1.0": {"sensitivity": 0.8}}},
        },
        "oof": {
            "cohen_kappa": 0.75,
            "smoothing": {"hmm": {"cohen_kappa": 0.8, "recall_per_class": {"REM": 0.4}}},
        },
        "models": {
            "hgb": {
                "test": {
                    "cohen_kappa": 0.6,
                    "accuracy": 0.9,
                    "per_subject": {"s1": {"cohen_kappa": 0.1}},
                }
            }
        },
        "comparisons": {"stack_vs_hgb": {"cohen_kappa": {"delta": 0.2}}},
    }
    assert headline_metrics(document) == {
        "test.cohen_kappa": 0.8,
        "test.macro_f1": 0.7,
        "test.f1_per_class.REM": 0.5,
        "test.events.sensitivity": 0.9,
        "oof.cohen_kappa": 0.75,
        "oof.smoothing.hmm.cohen_kappa": 0.8,
        "models.hgb.test.cohen_kappa": 0.6,
    }


def test_table_digest_follows_the_content():
    import pandas as pd

    table = pd.DataFrame({"epoch_id": ["a", "b"], "label": ["W", "N2"]})
    assert table_digest(table) == table_digest(table.copy())
    assert table_digest(table) != table_digest(table.assign(label=["W", "N3"]))


# A process that opens a run (tagged as RunTagsHook tags it) and a nested run, then waits.
DYING_RUN = textwrap.dedent(f"""
    import os, socket, sys, time
    import mlflow
    mlflow.set_tracking_uri(sys.argv[1])
    mlflow.set_experiment("dying")
    with mlflow.start_run(run_name="dies") as parent:
        mlflow.set_tags({{"{HOST_TAG}": socket.gethostname(), "{PID_TAG}": str(os.getpid())}})
        with mlflow.start_run(run_name="dies-trial-0", nested=True) as child:
            print(parent.info.run_id, child.info.run_id, flush=True)
            time.sleep(600)
""")


@pytest.fixture
def tracking_uri(tmp_path):
    import shutil

    shutil.copy(mlflow_template_db(), tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def killed_run(uri: str) -> tuple[str, str]:
    """Ids of a run and its nested run left RUNNING by a process killed with SIGKILL."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")
    }  # earlier runs may leave MLFLOW_EXPERIMENT_ID
    process = subprocess.Popen(
        [sys.executable, "-c", DYING_RUN, uri], stdout=subprocess.PIPE, text=True, env=env
    )
    parent, child = process.stdout.readline().split()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return parent, child


def test_runs_of_killed_processes_are_marked_killed_and_live_ones_kept(tracking_uri):
    client = MlflowClient(tracking_uri)
    parent, child = killed_run(tracking_uri)
    assert client.get_run(parent).info.status == "RUNNING"
    alive = client.create_run(
        client.get_run(parent).info.experiment_id,
        tags={HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())},
    )
    other_host = client.create_run(
        alive.info.experiment_id, tags={HOST_TAG: "another-machine", PID_TAG: "1"}
    )

    assert sorted(mark_dead_runs_killed(client)) == sorted([parent, child])
    assert (
        client.get_run(parent).info.status == "KILLED"
        and client.get_run(child).info.status == "KILLED"
    )
    assert client.get_run(alive.info.run_id).info.status == "RUNNING"
    assert client.get_run(other_host.info.run_id).info.status == "RUNNING"


@pytest.mark.integration
def test_the_next_kedro_run_marks_a_killed_run_and_names_itself(kedro_project):
    uri = f"sqlite:///{kedro_project.path / 'mlflow.db'}"
    parent, child = killed_run(uri)
    kedro_project.run("data_engineering", TINY_SLEEP)
    client = MlflowClient(uri)
    assert (
        client.get_run(parent).info.status == "KILLED"
        and client.get_run(child).info.status == "KILLED"
    )
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.kedro_pipelines = 'data_engineering'"
    )
    run = client.get_run(runs.run_id.iloc[0])
    assert run.info.run_name == "sleep:data_engineering@local" and run.info.status == "FINISHED"
    assert run.data.tags[PID_TAG] == str(os.getpid()) and run.data.tags[HOST_TAG]
    assert [i.dataset.name for i in run.inputs.dataset_inputs] == ["synthetic-sleep-6x0.5h-seed7"]
