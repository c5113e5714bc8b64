import numpy as np
import pandas as pd
import pytest

from epochstack.errors import InputDataError
from epochstack.io.csv import read_csv_recordings

SFREQ = 25.0


def signals_table(recording_ids=("r1", "r2"), n=100):
    rng = np.random.default_rng(0)
    parts = []
    for i, recording_id in enumerate(recording_ids):
        labels = np.array(["background"] * n, dtype=object)
        labels[40:60] = "seizure"
        labels[90:] = None
        parts.append(
            pd.DataFrame(
                {
                    "time": 1000.0 + np.arange(n) / SFREQ,
                    "recording_id": recording_id,
                    "subject_id": f"s{i}",
                    "acc_x": rng.normal(size=n),
                    "EEG C3": rng.normal(size=n),
                    "label": labels,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_per_sample_labels_become_event_runs(tmp_path):
    path = tmp_path / "signals.csv"
    table = signals_table()
    table.to_csv(path, index=False)
    recordings = read_csv_recordings(path, label_column="label")

    assert [r.recording_id for r in recordings] == ["r1", "r2"]
    first = recordings[0]
    assert first.subject_id == "s0"
    assert first.sfreq == pytest.approx(SFREQ)
    assert first.channel_names == ["acc_x", "EEG C3"]
    assert first.channel_types == ["acc", "eeg"]
    np.testing.assert_allclose(first.signals[0], table["acc_x"][:100], rtol=1e-6)
    assert first.events.to_dict("list") == {
        "onset_s": [0.0, 1.6, 2.4],
        "duration_s": [1.6, 0.8, 1.2],
        "label": ["background", "seizure", "background"],
    }


def test_events_csv_and_single_recording_from_the_file_stem(tmp_path):
    path, events = tmp_path / "patient3.csv", tmp_path / "events.csv"
    signals_table(("only",)).drop(columns=["recording_id", "subject_id", "label"]).to_csv(
        path, index=False
    )
    pd.DataFrame({"onset": [1.0], "duration": [2.0], "label": ["seizure"]}).to_csv(
        events, index=False
    )
    (recording,) = read_csv_recordings(path, events_path=events, channel_types={"EEG C3": "misc"})
    assert recording.recording_id == recording.subject_id == "patient3"
    assert recording.channel_types == ["acc", "misc"]
    assert recording.events.to_dict("list") == {
        "onset_s": [1.0],
        "duration_s": [2.0],
        "label": ["seizure"],
    }


def test_given_sfreq_without_time_column(tmp_path):
    path = tmp_path / "plain.csv"
    pd.DataFrame({"emg": np.arange(10.0)}).to_csv(path, index=False)
    (recording,) = read_csv_recordings(path, sfreq=5.0)
    assert recording.sfreq == 5.0 and recording.n_samples == 10
    assert recording.events is None  # unlabelled, not "all background"


def test_error_irregular_time(tmp_path):
    path = tmp_path / "gap.csv"
    table = signals_table(("r1",)).drop(columns="label")
    table.loc[50:, "time"] += 1.0
    table.to_csv(path, index=False)
    with pytest.raises(InputDataError, match="irregular time step at t=1001.96 s"):
        read_csv_recordings(path)


def test_error_missing_columns_and_non_numeric_channel(tmp_path):
    path = tmp_path / "bad.csv"
    table = signals_table(("r1",))
    table.drop(columns="time").to_csv(path, index=False)
    with pytest.raises(InputDataError, match="no time column 'time'"):
        read_csv_recordings(path)
    table.to_csv(path, index=False)
    with pytest.raises(InputDataError, match="no label column 'stage'"):
        read_csv_recordings(path, label_column="stage")
    with pytest.raises(InputDataError, match="channel column 'label' is not numeric"):
        read_csv_recordings(path)


def test_error_empty_files(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(InputDataError, match="empty.csv: empty file"):
        read_csv_recordings(path)
    path.write_text("time,eeg\n")
    with pytest.raises(InputDataError, match="no data rows"):
        read_csv_recordings(path)


def test_error_events_csv_columns_and_recordings(tmp_path):
    path, events = tmp_path / "signals.csv", tmp_path / "events.csv"
    signals_table().to_csv(path, index=False)
    pd.DataFrame({"start": [1.0], "label": ["x"]}).to_csv(events, index=False)
    with pytest.raises(InputDataError, match=r"lacks column\(s\) \['onset', 'duration'\]"):
        read_csv_recordings(path, events_path=events, label_column="label")
    pd.DataFrame({"onset": [1.0], "duration": [1.0], "label": ["x"]}).to_csv(events, index=False)
    with pytest.raises(
        InputDataError, match="no recording_id column, but the signals hold 2 recordings"
    ):
        read_csv_recordings(path, events_path=events, label_column="label")


@pytest.mark.parametrize("column", ["recording_id", "subject_id"])
def test_error_rows_with_an_empty_id_are_refused_not_dropped(tmp_path, column):
    path = tmp_path / "ids.csv"
    table = signals_table()
    table.loc[[5, 6, 150], column] = None
    table.to_csv(path, index=False)
    with pytest.raises(
        InputDataError,
        match=rf"ids.csv: 3 row\(s\) have an empty '{column}' \(the first on line 7\)",
    ):
        read_csv_recordings(path, label_column="label")


@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_error_non_finite_samples_name_the_line_and_recording(tmp_path, value):
    path = tmp_path / "wrist.csv"
    table = signals_table()
    table.loc[130, "EEG C3"] = value
    table.to_csv(path, index=False)
    with pytest.raises(
        InputDataError,
        match=r"wrist.csv: channel column 'EEG C3' has 1 empty/NaN/inf value\(s\), the first on line 132 \(recording 'r2'",
    ):
        read_csv_recordings(path, label_column="label")


def test_error_events_with_negative_durations(tmp_path):
    path, events = tmp_path / "patient3.csv", tmp_path / "events.csv"
    signals_table(("only",)).drop(columns=["recording_id", "subject_id", "label"]).to_csv(
        path, index=False
    )
    pd.DataFrame({"onset": [1.0, 2.0], "duration": [2.0, -1.0], "label": ["seizure"] * 2}).to_csv(
        events, index=False
    )
    with pytest.raises(
        InputDataError,
        match=r"events.csv: 1 event line\(s\) with a negative or missing onset/duration \(lines 3\)",
    ):
        read_csv_recordings(path, events_path=events)
