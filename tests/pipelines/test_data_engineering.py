"""data_engineering in real Kedro sessions on tiny synthetic and UEA data."""

import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from epochstack.errors import InputDataError
from epochstack.io.edf_writer import write_edf
from epochstack.pipelines.data_engineering.nodes import epoch_recordings, ingest_recordings

UEA = Path(__file__).resolve().parents[2] / "data" / "01_raw" / "uea"  # shipped with the repo
pytestmark = pytest.mark.integration


def load(project, name, params=None):
    return project.catalog(params).load(name)


def test_contract_folds_and_mlflow_run(kedro_project, tiny_sleep_params):
    kedro_project.run("data_engineering", tiny_sleep_params)
    table, folds, store = (
        load(kedro_project, n) for n in ("epoch_table", "folds", "epoch_signals")
    )

    expected = {
        "epoch_id",
        "recording_id",
        "subject_id",
        "epoch_index",
        "t_start_s",
        "label",
        "signal_row",
        "flag_flat",
        "flag_clipped",
        "flag_extreme",
        "artefact",
    }
    assert expected <= set(table.columns)
    assert table.epoch_id.is_unique and set(table.label) == {"Wake", "NREM", "REM"}
    # every epoch's signals are where the table says
    for rid, rows in table.groupby("recording_id"):
        assert store[rid].shape == (len(rows), 4, 3000)
        assert list(rows.signal_row) == list(range(len(rows)))

    merged = folds.merge(table[["epoch_id", "subject_id"]], on="epoch_id")
    assert len(merged) == len(table)
    assert (merged.groupby("subject_id").fold.nunique() == 1).all(), "a subject sits in two folds"
    test_subjects = set(merged.subject_id[merged.fold == -1])
    assert len(test_subjects) == 2 and not test_subjects & set(merged.subject_id[merged.fold >= 0])

    mlflow.set_tracking_uri(f"sqlite:///{kedro_project.path / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True)
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["params.dataset.format"] == "synthetic"
    assert run["metrics.data.epochs_kept"] == len(table)
    assert "tags.git_commit" in runs and run["tags.kedro_env"] == "local"


def test_same_seed_gives_identical_outputs(tmp_path, tiny_sleep_params):
    from tests.conftest import KedroProject

    outputs = []
    for name in ("a", "b"):
        project = KedroProject(tmp_path / name)
        project.run("data_engineering", tiny_sleep_params)
        catalog = project.catalog()
        store = catalog.load("epoch_signals")
        outputs.append(
            (
                catalog.load("epoch_table"),
                catalog.load("folds"),
                {r: np.asarray(store[r]) for r in store},
            )
        )
    (t1, f1, s1), (t2, f2, s2) = outputs
    pd.testing.assert_frame_equal(t1, t2)
    pd.testing.assert_frame_equal(f1, f2)
    assert s1.keys() == s2.keys() and all(np.array_equal(s1[r], s2[r]) for r in s1)


def test_uea_test_file_is_the_held_out_set(kedro_project):
    params = {
        "dataset": {
            "format": "uea_ts",
            "train_path": str(UEA / "BasicMotions_TRAIN.ts"),
            "test_path": str(UEA / "BasicMotions_TEST.ts"),
            "sfreq": 10.0,
        },
        "splits": {"n_folds": 4},
    }
    kedro_project.run("data_engineering", params)
    table, folds = load(kedro_project, "epoch_table", params), load(kedro_project, "folds", params)
    assert len(table) == 80 and (folds.fold == -1).sum() == 40
    test_ids = set(table.epoch_id[table.source_split == "test"])
    assert test_ids == set(folds.epoch_id[folds.fold == -1])


def test_bad_input_fails_clearly_and_keeps_earlier_outputs(kedro_project, tiny_sleep_params):
    kedro_project.run("data_engineering", tiny_sleep_params)
    table_path = kedro_project.path / "data/03_primary/epoch_table.parquet"
    before = table_path.read_bytes()
    with pytest.raises(
        InputDataError, match=r"dataset.format: input should be 'synthetic'.*got 'xdf'"
    ):
        kedro_project.run("data_engineering", {"dataset": {"format": "xdf"}})
    bad_ts = kedro_project.path / "data/01_raw/bad.ts"
    bad_ts.write_text("@problemName bad\n@dimensions 2\n@data\n1,2,3:a\n")
    with pytest.raises(InputDataError, match="bad.ts"):
        kedro_project.run(
            "data_engineering",
            {"dataset": {"format": "uea_ts", "train_path": str(bad_ts), "test_path": str(bad_ts)}},
        )
    assert table_path.read_bytes() == before


def test_cli_accepts_the_older_pipeline_flag(kedro_project):
    """`kedro run --pipeline <name>` (the pre-1.0 spelling) still works."""
    params = f"--params=dataset.format=uea_ts,dataset.train_path={UEA}/BasicMotions_TRAIN.ts,dataset.test_path={UEA}/BasicMotions_TEST.ts"
    kedro = Path(sys.executable).with_name("kedro")
    done = subprocess.run(
        [str(kedro), "run", "--pipeline", "data_engineering", params],
        cwd=kedro_project.path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (kedro_project.path / "data/05_model_input/folds.parquet").exists()


def test_edf_round_trip_gives_the_same_epochs_and_labels(tmp_path):
    """synthetic -> EDF+ files -> `edf` ingest: the same epochs (to 16-bit precision) and labels."""
    conf = yaml.safe_load(
        (
            Path(__file__).resolve().parents[2] / "conf/base/parameters_data_engineering.yml"
        ).read_text()
    )
    dataset, preprocessing = conf["dataset"], conf["preprocessing"]
    dataset["synthetic"].update(n_subjects=2, hours_per_subject=0.25, seed=3)
    synthetic = ingest_recordings(dataset)
    for recording_id, make in synthetic.items():
        write_edf(make(), tmp_path / f"{recording_id}.edf")
    from_edf = ingest_recordings(
        {**dataset, "format": "edf", "edf": {**dataset["edf"], "path": str(tmp_path)}}
    )
    assert sorted(from_edf) == sorted(synthetic)

    executor = {"backend": "local", "n_workers": 1}
    staged_a, table_a, _, _ = epoch_recordings(
        synthetic, dataset, preprocessing, executor, str(tmp_path)
    )
    staged_b, table_b, _, _ = epoch_recordings(
        from_edf, dataset, preprocessing, executor, str(tmp_path)
    )
    columns = ["epoch_id", "recording_id", "subject_id", "epoch_index", "t_start_s", "label"]
    pd.testing.assert_frame_equal(table_a[columns], table_b[columns])
    store_a, store_b = staged_a.open(), staged_b.open()
    for rid in store_a:
        epochs = np.asarray(store_a[rid])
        scale = np.abs(epochs).max(axis=(0, 2), keepdims=True)
        np.testing.assert_allclose(store_b[rid] / scale, epochs / scale, atol=1e-3)
