"""MATLAB recordings: v5 (scipy) and v7.3 (HDF5, read with h5py, written here with hdf5storage,
a MATLAB-compatible writer), the documented layout, and the errors a lab meets."""

from __future__ import annotations

import hdf5storage
import numpy as np
import pytest
import scipy.io

from epochstack.errors import InputDataError
from epochstack.io.mat import read_mat_recordings, recording_variables, write_mat
from epochstack.recordings import read_recordings
from epochstack.synthetic import generate_sleep_recording


@pytest.fixture(scope="module")
def night():
    return generate_sleep_recording(3, hours=0.1, sfreq=100.0, seed=5, difficulty="easy")


def write_v73(path, variables):
    hdf5storage.savemat(
        str(path), variables, format="7.3", matlab_compatible=True, store_python_metadata=False
    )
    return path


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_both_versions_read_back_the_recording_exactly(tmp_path, night, version):
    path = tmp_path / "sub-003_night.mat"
    if version == "5":
        write_mat(night, path)
    else:
        write_v73(path, recording_variables(night))
    (loader,) = read_mat_recordings(path).values()
    rec = loader()
    assert rec.recording_id == "sub-003_night" and rec.subject_id == "sub-003"
    np.testing.assert_array_equal(rec.signals, night.signals.astype(np.float32))
    assert rec.sfreq == 100.0 and rec.channel_names == list(night.channel_names)
    assert rec.channel_types == ["eeg", "eeg", "eog", "emg"]
    assert list(rec.epoch_labels) == list(night.epoch_labels) and rec.label_epoch_s == 30.0


def test_samples_by_channels_and_a_char_matrix_of_names_are_read(tmp_path, night):
    names = np.array(["EEG Fpz-Cz", "EEG Pz-Oz ", "EOG horizontal", "EMG submental"])
    scipy.io.savemat(
        tmp_path / "a.mat",
        {"X": night.signals.T, "fs": np.array([[100]]), "chans": names},
    )
    rec = read_mat_recordings(
        tmp_path, signals_variable="X", sfreq_variable="fs", channels_variable="chans"
    )["a"]()
    assert rec.signals.shape == night.signals.shape and rec.channel_names[1] == "EEG Pz-Oz"
    assert rec.epoch_labels is None  # no labels variable: unlabelled


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_a_missing_variable_is_named_with_the_parameter_to_set(tmp_path, night, version):
    variables = recording_variables(night)
    variables.pop("sfreq")
    path = tmp_path / "night.mat"
    if version == "5":
        scipy.io.savemat(path, variables)
    else:
        write_v73(path, variables)
    with pytest.raises(InputDataError, match=r"no variable 'sfreq'.*dataset\.mat\.sfreq_variable"):
        read_mat_recordings(path)


def test_numeric_labels_need_their_codes(tmp_path, night):
    variables = recording_variables(night)
    codes = {"W": 2, "N1": 3, "N2": 3, "N3": 3, "REM": 1}
    variables["labels"] = np.array([codes[s] for s in night.epoch_labels], dtype=float)
    scipy.io.savemat(tmp_path / "night.mat", variables)
    with pytest.raises(InputDataError, match="numeric codes .*label_codes"):
        read_mat_recordings(tmp_path)["night"]()
    rec = read_mat_recordings(tmp_path, label_codes={1: "REM", 2: "W", 3: "NREM"})["night"]()
    assert set(rec.epoch_labels) <= {"REM", "W", "NREM"}


def test_random_bytes_named_mat_are_refused_on_one_line(tmp_path):
    (tmp_path / "noise.mat").write_bytes(np.random.default_rng(0).bytes(20000))
    with pytest.raises(InputDataError, match="not a MATLAB file") as error:
        read_mat_recordings(tmp_path)
    assert "\n" not in str(error.value)


def test_signals_that_do_not_match_the_channel_names_are_refused(tmp_path, night):
    variables = recording_variables(night)
    variables["channel_names"] = variables["channel_names"][:3]
    scipy.io.savemat(tmp_path / "night.mat", variables)
    with pytest.raises(InputDataError, match="3 channel names"):
        read_mat_recordings(tmp_path)["night"]()


def test_the_mat_format_is_one_switch_of_the_dataset_parameters(tmp_path, night):
    write_mat(night, tmp_path / "sub-003.mat")
    dataset = {"format": "mat", "mat": {"path": str(tmp_path), "signals_variable": "signals"}}
    (rec,) = [load() for load in read_recordings(dataset).values()]
    assert rec.recording_id == "sub-003" and rec.n_samples == night.n_samples


@pytest.mark.integration
def test_data_engineering_trains_on_a_folder_of_mat_files(tmp_path, kedro_project):
    folder = tmp_path / "mat"
    folder.mkdir()
    for subject in range(6):
        rec = generate_sleep_recording(subject, hours=0.1, sfreq=100.0, seed=5, difficulty="easy")
        write_mat(rec, folder / f"sub-{subject:03d}_night.mat")
    params = {
        "dataset": {"format": "mat", "mat": {"path": str(folder)}},
        "splits": {"n_folds": 2, "n_test_subjects": 2},
    }
    kedro_project.run("data_engineering", params)
    catalog = kedro_project.catalog(params)
    table, folds = catalog.load("epoch_table"), catalog.load("folds")
    assert table.subject_id.nunique() == 6 and len(table) == 6 * 12
    assert set(table.label.dropna()) <= {"Wake", "NREM", "REM"}  # three_class mapping applied
    assert (folds.fold == -1).sum() == 2 * 12
