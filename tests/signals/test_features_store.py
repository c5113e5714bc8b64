from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from epochstack.errors import InputDataError
from epochstack.signals.epoch_store import write_epoch_store
from epochstack.signals.features import DEFAULT_CONFIG, compute_features_for_store

PARAMETERS = Path(__file__).resolve().parents[2] / "conf" / "base" / "parameters_feature_engineering.yml"

LAYOUTS = {
    "sleep": (100.0, 3000, ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"], ["eeg", "eeg", "eog", "emg"]),
    "seizure": (25.0, 750, ["ACC x", "ACC y", "ACC z", "HR"], ["acc", "acc", "acc", "hr"]),
    "uea": (1.0, 100, ["dim_0", "dim_1", "dim_2"], ["misc", "misc", "misc"]),
}


def make_store(tmp_path: Path, layout: str, epochs_per_recording=(6, 4), gap_in_first=True):
    sfreq, n_times, names, types = LAYOUTS[layout]
    rng = np.random.default_rng(0)
    arrays, rows = {}, []
    for r, n_epochs in enumerate(epochs_per_recording):
        recording_id = f"rec{r}"
        arrays[recording_id] = (rng.standard_normal((n_epochs, len(names), n_times)) * (1 + r)).astype(np.float32)
        arrays[recording_id][0, 0] = 0.0  # a flat channel
        index = np.arange(n_epochs) + (np.arange(n_epochs) >= 3) * 2 * (gap_in_first and r == 0)
        rows += [
            {"epoch_id": f"{recording_id}_{i:06d}", "recording_id": recording_id, "subject_id": f"s{r}",
             "epoch_index": int(i), "signal_row": row}
            for row, i in enumerate(index)
        ]
    store = write_epoch_store(tmp_path / "epoch_signals", arrays, sfreq=sfreq, channel_names=names, channel_types=types)
    return store, pd.DataFrame(rows)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_store_features_follow_the_epoch_table_for_every_layout(tmp_path, layout):
    store, table = make_store(tmp_path, layout)
    table = table.iloc[::-1].reset_index(drop=True)  # any order is kept
    features, report = compute_features_for_store(store, table, {}, n_jobs=1, return_report=True)
    assert list(features["epoch_id"]) == list(table["epoch_id"])
    values = features.drop(columns="epoch_id")
    assert values.shape[1] >= 50
    assert np.isfinite(values.to_numpy()).mean() > 0.99
    assert all(c == c.lower() and " " not in c and "-" not in c for c in values.columns)
    assert any(c.endswith("_ctx_rnorm") for c in values.columns)
    assert report.set_index("recording_id")["n_epochs"].to_dict() == {"rec0": 6, "rec1": 4}


def test_parallel_workers_give_the_same_table(tmp_path):
    store, table = make_store(tmp_path, "sleep")
    pd.testing.assert_frame_equal(
        compute_features_for_store(store, table, {}, n_jobs=1), compute_features_for_store(store, table, {}, n_jobs=2)
    )


def test_recordings_missing_from_the_store_are_an_error(tmp_path):
    store, table = make_store(tmp_path, "uea")
    table.loc[0, "recording_id"] = "elsewhere"
    with pytest.raises(InputDataError, match="elsewhere"):
        compute_features_for_store(store, table, {}, n_jobs=1)


def test_parameters_file_matches_the_library_defaults():
    # The inference pipeline and notebooks rely on the library defaults: keep both in step.
    assert yaml.safe_load(PARAMETERS.read_text())["features"] == DEFAULT_CONFIG
