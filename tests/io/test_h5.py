from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from epochstack.errors import InputDataError
from epochstack.io import h5 as h5_module
from epochstack.io.h5 import read_h5_epochs

N_META, N_TIMES = 3, 50
SUBJECTS = [4, 4, 9, 4, 9, 9, 2]


@pytest.fixture
def h5_pair(tmp_path):
    """Rows: 3 meta columns (subject first) then 50 samples; labels CSV with id + stage."""
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(len(SUBJECTS), N_TIMES))
    meta = np.c_[SUBJECTS, np.arange(len(SUBJECTS)), np.zeros(len(SUBJECTS))]
    x_path, y_path = tmp_path / "X_train.h5", tmp_path / "y_train.csv"
    with h5py.File(x_path, "w") as f:
        f.create_dataset("features", data=np.c_[meta, samples])
    labels = [0, 1, 2, 1, 0, 2, 1]
    pd.DataFrame({"id": np.arange(100, 100 + len(SUBJECTS)), "sleep_stage": labels}).to_csv(
        y_path, index=False
    )
    return x_path, y_path, samples, labels


def test_round_trip_groups_rows_by_subject_in_file_order(h5_pair, monkeypatch):
    x_path, y_path, samples, labels = h5_pair
    monkeypatch.setattr(h5_module, "ROWS_PER_CHUNK", 2)  # several chunks on a tiny file
    recordings = read_h5_epochs(x_path, y_path, n_meta_columns=N_META, sfreq=250.0)

    assert [r.subject_id for r in recordings] == ["4", "9", "2"]
    by_subject = {r.subject_id: r for r in recordings}
    rows = [0, 1, 3]
    np.testing.assert_allclose(by_subject["4"].epochs[:, 0], samples[rows], rtol=1e-6)
    assert list(by_subject["4"].labels) == [str(labels[i]) for i in rows]
    assert list(by_subject["4"].epoch_index) == [0, 1, 2]
    assert by_subject["9"].epochs.shape == (3, 1, N_TIMES)
    assert by_subject["2"].recording_id == "X_train_2"
    assert by_subject["2"].channel_names == ["EEG"] and by_subject["2"].channel_types == ["eeg"]
    assert by_subject["2"].sfreq == 250.0
    np.testing.assert_allclose(by_subject["9"].t_start_s, [0.0, 0.2, 0.4])


def test_without_labels(h5_pair):
    x_path, *_ = h5_pair
    recordings = read_h5_epochs(x_path, None, n_meta_columns=N_META)
    assert all(r.labels is None for r in recordings)
    assert recordings[0].sfreq == 1.0


def test_error_missing_key_lists_keys(h5_pair):
    x_path, y_path, *_ = h5_pair
    with pytest.raises(
        InputDataError, match=r"no dataset 'X'; datasets in the file: \['features'\]"
    ):
        read_h5_epochs(x_path, y_path, dataset_key="X", n_meta_columns=N_META)


def test_error_too_many_meta_columns(h5_pair):
    x_path, y_path, *_ = h5_pair
    with pytest.raises(InputDataError, match="n_meta_columns=53 leaves no samples in 53 columns"):
        read_h5_epochs(x_path, y_path, n_meta_columns=N_META + N_TIMES)


def test_error_row_count_mismatch(h5_pair, tmp_path):
    x_path, *_ = h5_pair
    short = tmp_path / "short.csv"
    pd.DataFrame({"sleep_stage": [0, 1]}).to_csv(short, index=False)
    with pytest.raises(InputDataError, match="2 label rows for 7 epochs"):
        read_h5_epochs(x_path, short, n_meta_columns=N_META)


def test_error_ids_out_of_order(h5_pair, tmp_path):
    x_path, *_ = h5_pair
    shuffled = tmp_path / "shuffled.csv"
    pd.DataFrame({"id": [0, 2, 1, 3, 4, 5, 6], "sleep_stage": [0] * 7}).to_csv(
        shuffled, index=False
    )
    with pytest.raises(InputDataError, match="not in HDF5 row order"):
        read_h5_epochs(x_path, shuffled, n_meta_columns=N_META)


def test_error_labels_missing_or_wrong_column(h5_pair, tmp_path):
    x_path, y_path, *_ = h5_pair
    with pytest.raises(InputDataError, match="labels file not found"):
        read_h5_epochs(x_path, tmp_path / "nope.csv", n_meta_columns=N_META)
    with pytest.raises(
        InputDataError, match=r"no label column 'stage'; columns are \['id', 'sleep_stage'\]"
    ):
        read_h5_epochs(x_path, y_path, n_meta_columns=N_META, label_column="stage")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputDataError, match="empty file .no header line in this labels CSV"):
        read_h5_epochs(x_path, empty, n_meta_columns=N_META)


def test_error_non_finite_samples_name_the_row_and_subject(tmp_path):
    x_path = tmp_path / "ward.h5"
    data = np.c_[
        np.array(SUBJECTS, float), np.zeros((len(SUBJECTS), 2)), np.ones((len(SUBJECTS), N_TIMES))
    ]
    data[4, N_META + 7] = -np.inf
    data[6, N_META] = np.nan
    with h5py.File(x_path, "w") as f:
        f.create_dataset("features", data=data)
    with pytest.raises(
        InputDataError,
        match=r"ward.h5: NaN/inf samples in row 4 \(subject 9, column 10: -inf\) and 1 more row\(s\) up to row 6",
    ):
        read_h5_epochs(x_path, None, n_meta_columns=N_META)


def test_error_rows_without_a_subject_id(tmp_path):
    x_path = tmp_path / "ward.h5"
    subjects = np.array(SUBJECTS, float)
    subjects[2] = np.nan
    with h5py.File(x_path, "w") as f:
        f.create_dataset("features", data=np.c_[subjects, np.zeros((len(SUBJECTS), 2 + N_TIMES))])
    with pytest.raises(
        InputDataError,
        match=r"ward.h5: 1 row\(s\) have no subject id in meta column 0 \(first: row 2\)",
    ):
        read_h5_epochs(x_path, None, n_meta_columns=N_META)


def test_channels_must_name_the_one_channel(h5_pair):
    x_path, y_path, *_ = h5_pair
    assert read_h5_epochs(x_path, y_path, n_meta_columns=N_META, channels=["EEG"])[
        0
    ].channel_names == ["EEG"]
    with pytest.raises(
        InputDataError, match=r"X_train.h5: channel\(s\) \['EMG'\] not found; available: \['EEG'\]"
    ):
        read_h5_epochs(x_path, y_path, n_meta_columns=N_META, channels=["EMG"])


def test_without_sfreq_the_pipeline_applies_no_hz_filter(h5_pair, tmp_path, caplog):
    """The reader's nominal 1 Hz is marked unknown: the EEG high-pass of the defaults is skipped."""
    import yaml

    from epochstack.pipelines.data_engineering.nodes import epoch_recordings, ingest_recordings

    x_path, y_path, samples, _ = h5_pair
    conf = yaml.safe_load(
        (
            Path(__file__).resolve().parents[2] / "conf/base/parameters_data_engineering.yml"
        ).read_text()
    )
    dataset = {
        **conf["dataset"],
        "format": "h5",
        "sfreq": None,
        "label_mapping": "none",
        "h5": {
            **conf["dataset"]["h5"],
            "x_path": str(x_path),
            "y_path": str(y_path),
            "n_meta_columns": N_META,
        },
    }
    assert conf["preprocessing"]["filters"]["eeg"]["l_freq"]  # the defaults do filter EEG
    with caplog.at_level("WARNING"):
        staged, table, _, report = epoch_recordings(
            ingest_recordings(dataset),
            dataset,
            conf["preprocessing"],
            {"n_workers": 1},
            str(tmp_path),
        )
    assert any("no sampling rate" in r.getMessage() for r in caplog.records)
    store = staged.open()
    assert not store.sfreq_known and report["sfreq_known"] is False
    np.testing.assert_allclose(store["X_train_4"][:, 0], samples[[0, 1, 3]], rtol=1e-6)


def test_error_text_values_and_unreadable_data_name_the_file(tmp_path):
    path = tmp_path / "strings.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "features",
            data=np.array([["1", "a", "b"]] * 3, dtype=object),
            dtype=h5py.string_dtype(),
        )
    with pytest.raises(
        InputDataError, match=r"strings\.h5: dataset 'features' holds object values"
    ):
        read_h5_epochs(path, None, n_meta_columns=1)
    text = tmp_path / "notes.h5"
    text.write_text("not an HDF5 file")
    with pytest.raises(InputDataError, match=r"notes\.h5: not a readable HDF5 file"):
        read_h5_epochs(text, None, n_meta_columns=1)
