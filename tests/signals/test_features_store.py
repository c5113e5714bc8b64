import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from epochstack.errors import InputDataError
from epochstack.execution import Executor
from epochstack.signals.epoch_store import EpochStore, write_epoch_store
from epochstack.signals.features import DEFAULT_CONFIG, compute_features_for_store

PARAMETERS = (
    Path(__file__).resolve().parents[2] / "conf" / "base" / "parameters_feature_engineering.yml"
)

LAYOUTS = {
    "sleep": (
        100.0,
        3000,
        ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"],
        ["eeg", "eeg", "eog", "emg"],
    ),
    "seizure": (25.0, 750, ["ACC x", "ACC y", "ACC z", "HR"], ["acc", "acc", "acc", "hr"]),
    "uea": (1.0, 100, ["dim_0", "dim_1", "dim_2"], ["misc", "misc", "misc"]),
    "short": (1.0, 16, ["dim_0", "dim_1"], ["misc", "misc"]),
    "long": (256.0, 30 * 256, ["EEG C3", "EMG chin"], ["eeg", "emg"]),
}


def make_store(
    tmp_path: Path, layout: str, epochs_per_recording=(6, 4), gap_in_first=True, sfreq_known=True
):
    sfreq, n_times, names, types = LAYOUTS[layout]
    rng = np.random.default_rng(0)
    arrays, rows = {}, []
    for r, n_epochs in enumerate(epochs_per_recording):
        recording_id = f"rec{r}"
        arrays[recording_id] = (
            rng.standard_normal((n_epochs, len(names), n_times)) * (1 + r)
        ).astype(np.float32)
        arrays[recording_id][0, 0] = 0.0  # a flat channel
        index = np.arange(n_epochs) + (np.arange(n_epochs) >= 3) * 2 * (gap_in_first and r == 0)
        rows += [
            {
                "epoch_id": f"{recording_id}_{i:06d}",
                "recording_id": recording_id,
                "subject_id": f"s{r}",
                "epoch_index": int(i),
                "signal_row": row,
            }
            for row, i in enumerate(index)
        ]
    store = write_epoch_store(
        tmp_path / "epoch_signals", arrays, sfreq=sfreq, channel_names=names, channel_types=types
    )
    if not sfreq_known:  # what data_engineering writes for sources without a sampling rate
        info = json.loads((store.path / "info.json").read_text())
        (store.path / "info.json").write_text(json.dumps({**info, "sfreq_known": False}))
        store = EpochStore(store.path)
    return store, pd.DataFrame(rows)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_store_features_follow_the_epoch_table_for_every_layout(tmp_path, layout):
    store, table = make_store(tmp_path, layout)
    table = table.iloc[::-1].reset_index(drop=True)  # any order is kept
    features, report = compute_features_for_store(store, table, {}, return_report=True)
    assert list(features["epoch_id"]) == list(table["epoch_id"])
    values = features.drop(columns="epoch_id")
    assert values.shape[1] >= 50
    assert np.isfinite(values.to_numpy()).mean() > 0.99
    assert all(c == c.lower() and " " not in c and "-" not in c for c in values.columns)
    assert any(c.endswith("_ctx_rnorm") for c in values.columns)
    assert report.set_index("recording_id")["n_epochs"].to_dict() == {"rec0": 6, "rec1": 4}


def test_short_epochs_adapt_welch_wavelet_and_permutation_entropy(tmp_path, caplog):
    store, table = make_store(tmp_path, "short")
    with caplog.at_level("INFO"):
        features = compute_features_for_store(store, table, {})
    assert "dim_0_wavelet_energy_a1" in features and "dim_0_wavelet_energy_d2" not in features
    assert "dim_0_spectral_relpow_f70_100" in features  # one 16-sample Welch segment
    assert (
        "dim_0_spectral_relpow_f00_05" not in features
        and "narrower than the resolution" in caplog.text
    )
    assert features["dim_1_time_permutation_entropy"].between(0.1, 1.0).all()


def test_long_epochs_use_four_second_segments_and_five_wavelet_levels(tmp_path):
    store, table = make_store(tmp_path, "long", epochs_per_recording=(3, 2))
    features = compute_features_for_store(store, table, {"families": ["spectral", "wavelet"]})
    assert {
        "eeg_c3_spectral_relpow_gamma",
        "eeg_c3_spectral_line_noise_ratio_50hz",
        "emg_chin_wavelet_std_a5",
    } <= set(features)
    # White noise: each wavelet level holds its share of the bandwidth.
    assert features["emg_chin_wavelet_relenergy_d1"].mean() == pytest.approx(0.5, abs=0.05)


def test_local_workers_and_a_dask_local_cluster_give_the_same_table(tmp_path, caplog):
    store, table = make_store(tmp_path, "sleep", epochs_per_recording=(6, 4, 5))
    one = compute_features_for_store(store, table, {})
    pd.testing.assert_frame_equal(
        one, compute_features_for_store(store, table, {}, Executor("local", None, 2))
    )
    with caplog.at_level("INFO"):
        on_dask = compute_features_for_store(
            store, table, {}, {"backend": "dask", "address": None, "n_workers": 2}
        )
    pd.testing.assert_frame_equal(one, on_dask)
    assert "dask" in caplog.text


def test_a_store_without_a_known_rate_gets_rate_free_features(tmp_path, caplog):
    store, table = make_store(tmp_path, "sleep", sfreq_known=False)
    with caplog.at_level("INFO"):
        features = compute_features_for_store(store, table, {})
    assert "gives no sampling rate" in caplog.text
    for channel in ("eeg_fpz_cz", "eog_horizontal", "emg_submental"):
        assert f"{channel}_spectral_relpow_f70_100" in features
        assert f"{channel}_spectral_relpow_alpha" not in features
    assert not any("line_noise" in c for c in features)


def test_context_is_skipped_when_every_recording_holds_one_epoch(tmp_path, caplog):
    store, table = make_store(tmp_path, "uea", epochs_per_recording=(1, 1, 1), gap_in_first=False)
    with caplog.at_level("INFO"):
        features = compute_features_for_store(store, table, {})
    assert not any("_ctx_" in c for c in features)
    assert "single epoch" in caplog.text
    assert features.shape[1] - 1 >= 50


def test_recordings_missing_from_the_store_are_an_error(tmp_path):
    store, table = make_store(tmp_path, "uea")
    table.loc[0, "recording_id"] = "elsewhere"
    with pytest.raises(InputDataError, match="elsewhere"):
        compute_features_for_store(store, table, {})


def test_parameters_file_matches_the_library_defaults():
    # The inference pipeline and notebooks rely on the library defaults: keep both in step.
    assert yaml.safe_load(PARAMETERS.read_text())["features"] == DEFAULT_CONFIG
