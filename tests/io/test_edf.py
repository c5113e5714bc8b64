import pickle

import edfio
import numpy as np
import pandas as pd
import pytest

from epochstack.errors import InputDataError
from epochstack.io.edf import channel_type, read_edf_recordings
from epochstack.io.edf_writer import write_edf
from epochstack.signals.recording import Recording

SFREQ = 100.0
CHANNELS = ["EEG Fpz-Cz", "EOG horizontal", "EMG submental", "ACC x"]
TYPES = ["eeg", "eog", "emg", "acc"]
STAGES = ["W", "W", "N1", "N2", "N2", None, "N3", "REM"]


def make_recording(duration_s: float = 240.5, seed: int = 0) -> Recording:
    rng = np.random.default_rng(seed)
    n_samples = int(duration_s * SFREQ)
    scale = np.array([[40.0], [80.0], [10.0], [0.5]])
    return Recording(
        recording_id="rec01",
        subject_id="rec01",
        signals=(rng.normal(size=(len(CHANNELS), n_samples)) * scale).astype(np.float32),
        sfreq=SFREQ,
        channel_names=list(CHANNELS),
        channel_types=list(TYPES),
        epoch_labels=np.array(STAGES, dtype=object),
        label_epoch_s=30.0,
        events=pd.DataFrame({"onset_s": [42.0], "duration_s": [7.5], "label": ["seizure"]}),
    )


def quantisation_step(signals: np.ndarray) -> np.ndarray:
    return (signals.max(axis=1) - signals.min(axis=1)) / 65535


def write_signals_only(
    path, duration_s=120, sfreq=SFREQ, names=("EEG Fpz-Cz", "EEG Pz-Oz"), events=()
):
    """An EDF(+) of noise; ``events`` (onset, duration, text) become EDF+ annotations."""
    rng = np.random.default_rng(1)
    signals = [
        edfio.EdfSignal(
            rng.normal(0, 30, int(duration_s * sfreq)), sfreq, label=name, physical_dimension="uV"
        )
        for name in names
    ]
    annotations = [
        edfio.EdfAnnotation(onset, duration, text) for onset, duration, text in events
    ] or None
    edfio.Edf(signals, annotations=annotations).write(path)


def write_hypnogram(path, stages):
    annotations = [edfio.EdfAnnotation(onset, duration, text) for onset, duration, text in stages]
    edfio.Edf([], annotations=annotations).write(path)


def test_round_trip_keeps_epochs_labels_events_and_signals(tmp_path):
    recording = make_recording()
    write_edf(recording, tmp_path / "rec01.edf")

    loaders = read_edf_recordings(tmp_path)
    assert list(loaders) == ["rec01"]
    pickle.loads(pickle.dumps(loaders["rec01"]))  # lazy loaders travel to worker processes
    back = loaders["rec01"]()

    assert back.signals.shape == recording.signals.shape  # padding of the last record cropped
    assert back.signals.dtype == np.float32
    error = np.abs(back.signals - recording.signals).max(axis=1)
    assert np.all(error <= quantisation_step(recording.signals))
    assert back.channel_names == CHANNELS
    assert back.channel_types == TYPES
    assert back.sfreq == SFREQ
    assert back.label_epoch_s == 30.0
    assert list(back.epoch_labels) == STAGES
    assert back.events.to_dict("list") == {
        "onset_s": [42.0],
        "duration_s": [7.5],
        "label": ["seizure"],
    }


def test_channels_are_picked_in_the_requested_order(tmp_path):
    write_edf(make_recording(), tmp_path / "rec01.edf")
    back = read_edf_recordings(tmp_path, channels=["EMG submental", "EEG Fpz-Cz"])["rec01"]()
    assert back.channel_names == ["EMG submental", "EEG Fpz-Cz"]
    assert back.channel_types == ["emg", "eeg"]
    assert back.signals.shape[0] == 2


def test_sleep_edf_pairs_psg_and_hypnogram_files(tmp_path):
    for night, stage in (("1", "Sleep stage 4"), ("2", "Sleep stage R")):
        write_signals_only(tmp_path / f"SC400{night}E0-PSG.edf")
        write_hypnogram(
            tmp_path / f"SC400{night}EC-Hypnogram.edf",
            [(0, 60, "Sleep stage W"), (60, 30, stage), (90, 600, "Sleep stage ?")],
        )
    loaders = read_edf_recordings(tmp_path)
    assert sorted(loaders) == ["SC4001E0", "SC4002E0"]
    first, second = loaders["SC4001E0"](), loaders["SC4002E0"]()
    assert first.subject_id == second.subject_id == "SC400"  # two nights, one subject
    assert list(first.epoch_labels) == ["W", "W", "N3", None]
    assert list(second.epoch_labels) == ["W", "W", "REM", None]
    assert first.events.empty


def test_hypnogram_csv_beside_the_recording(tmp_path):
    write_signals_only(tmp_path / "rat7_day1.edf")
    pd.DataFrame({"onset": [0, 30], "duration": [30, 60], "label": ["Wake", "NREM"]}).to_csv(
        tmp_path / "rat7_day1_hypnogram.csv", index=False
    )
    recording = read_edf_recordings(tmp_path, label_epoch_s=30.0)["rat7_day1"]()
    assert recording.subject_id == "rat7"
    assert list(recording.epoch_labels) == ["W", "NREM", "NREM"]


def test_short_hypnogram_gives_a_short_label_array(tmp_path):
    write_signals_only(tmp_path / "SC4001E0-PSG.edf", duration_s=300)
    write_hypnogram(tmp_path / "SC4001EC-Hypnogram.edf", [(0, 90, "Sleep stage 2")])
    labels = read_edf_recordings(tmp_path)["SC4001E0"]().epoch_labels
    assert list(labels) == ["N2", "N2", "N2"]


def test_channel_type_from_name_or_unit():
    assert channel_type("EEG Fpz-Cz") == "eeg"
    assert channel_type("EOG horizontal") == "eog"
    assert channel_type("acc_y") == "acc"
    assert channel_type("C3-A2", "uV") == "eeg"
    assert channel_type("Temp rectal", "degC") == "misc"


def test_error_empty_folder(tmp_path):
    with pytest.raises(InputDataError, match="no .edf/.bdf recordings"):
        read_edf_recordings(tmp_path)


def test_error_empty_file(tmp_path):
    (tmp_path / "broken.edf").write_bytes(b"")
    with pytest.raises(InputDataError, match="broken.edf: cannot read the EDF/BDF header"):
        read_edf_recordings(tmp_path)


def test_error_missing_channel_lists_available(tmp_path):
    write_signals_only(tmp_path / "rec.edf")
    with pytest.raises(
        InputDataError,
        match=r"\['EEG C3'\] not in the file; available: \['EEG Fpz-Cz', 'EEG Pz-Oz'\]",
    ):
        read_edf_recordings(tmp_path, channels=["EEG C3"])


def test_error_sampling_rate_mismatch(tmp_path):
    write_signals_only(tmp_path / "rec.edf", sfreq=128)
    with pytest.raises(InputDataError, match="sampling rate 128 Hz, expected 100 Hz"):
        read_edf_recordings(tmp_path, expected_sfreq=100)


def test_error_hypnogram_without_recording(tmp_path):
    write_signals_only(tmp_path / "SC4001E0-PSG.edf")
    write_hypnogram(tmp_path / "SC4011EH-Hypnogram.edf", [(0, 30, "Sleep stage W")])
    with pytest.raises(
        InputDataError, match="SC4011EH-Hypnogram.edf: hypnogram matches no recording"
    ):
        read_edf_recordings(tmp_path)


def test_error_subject_pattern_without_match(tmp_path):
    write_signals_only(tmp_path / "night1.edf")
    with pytest.raises(InputDataError, match="does not match dataset.edf.subject_pattern"):
        read_edf_recordings(tmp_path, subject_pattern=r"^sub-(\d+)")


def test_error_hypnogram_csv_with_wrong_columns(tmp_path):
    write_signals_only(tmp_path / "rec.edf")
    pd.DataFrame({"start": [0], "stage": ["W"]}).to_csv(tmp_path / "rec_hypnogram.csv", index=False)
    with pytest.raises(InputDataError, match=r"lacks column\(s\) \['onset', 'duration', 'label'\]"):
        read_edf_recordings(tmp_path)  # hypnograms are read when the folder is scanned


def test_write_refuses_labels_that_are_not_stages(tmp_path):
    recording = make_recording()
    recording.epoch_labels = np.array(["left"] * len(STAGES), dtype=object)
    with pytest.raises(InputDataError, match="'left' is not a sleep stage"):
        write_edf(recording, tmp_path / "rec.edf")


def test_bdf_files_are_read_in_microvolts(tmp_path):
    ramp = np.linspace(-100, 100, 2560)
    edfio.Bdf([edfio.BdfSignal(ramp, 256, label="Fz", physical_dimension="uV")]).write(
        tmp_path / "s01.BDF"
    )
    recording = read_edf_recordings(tmp_path)["s01"]()
    assert recording.sfreq == 256.0
    assert recording.channel_types == ["eeg"]
    np.testing.assert_allclose(recording.signals[0], ramp, atol=1e-3)
    assert recording.epoch_labels is None


def write_csv_hypnogram(path, rows):
    pd.DataFrame(rows, columns=["onset", "duration", "label"]).to_csv(path, index=False)


@pytest.mark.parametrize("keep", [0.47, 0.999])
def test_a_truncated_file_is_read_with_a_warning_saying_how_much_is_missing(tmp_path, caplog, keep):
    path = tmp_path / "rec.edf"
    write_signals_only(path, duration_s=120)  # 120 data records of 1 s
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])  # cut inside a data record
    with caplog.at_level("WARNING", logger="epochstack.io.edf"):
        recording = read_edf_recordings(tmp_path)["rec"]()
    held = recording.signals.shape[1] / SFREQ
    assert held < 120
    [message] = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    assert message.startswith(f"{path}: truncated: the header declares 120 data records (120 s)")
    assert f"the file holds {held:.0f} ({held:.0f} s); {120 - held:.0f} s" in message


def test_a_complete_file_gives_no_truncation_warning(tmp_path, caplog):
    write_edf(make_recording(), tmp_path / "rec01.edf")  # a padded last record is complete
    with caplog.at_level("WARNING", logger="epochstack.io.edf"):
        read_edf_recordings(tmp_path)["rec01"]()
    assert not [r for r in caplog.records if "truncated" in r.getMessage()]


def test_unknown_hypnogram_labels_are_listed_and_become_unscored_epochs(tmp_path, caplog):
    write_signals_only(tmp_path / "rec.edf")
    write_csv_hypnogram(
        tmp_path / "rec_hypnogram.csv",
        [(0, 30, "W"), (30, 30, "Deep"), (60, 30, "N2"), (90, 30, "Zone-X")],
    )
    with caplog.at_level("WARNING", logger="epochstack.io.hypnograms"):
        loader = read_edf_recordings(tmp_path)["rec"]
    [message] = [r.getMessage() for r in caplog.records]
    assert message.startswith(
        f"{tmp_path / 'rec_hypnogram.csv'}: hypnogram labels ['Deep', 'Zone-X'] are not sleep stages; their 60 s"
    )
    recording = loader()
    assert list(recording.epoch_labels) == ["W", None, "N2", None]  # unscored, never classes
    assert recording.events.empty  # nor events


def test_a_hypnogram_without_any_known_stage_is_refused(tmp_path):
    write_signals_only(tmp_path / "rec.edf")
    write_csv_hypnogram(
        tmp_path / "rec_hypnogram.csv", [(0, 60, "Zone-Alpha"), (60, 60, "Zone-Beta")]
    )
    with pytest.raises(
        InputDataError,
        match=r"rec_hypnogram.csv: none of its labels is a sleep stage \(Zone-Alpha, Zone-Beta\)",
    ):
        read_edf_recordings(tmp_path)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [(0, 30, "W"), (30, -30, "N2"), (60, 60, "N2")],
            r"1 hypnogram line\(s\) with a negative or missing onset/duration \(lines 3\)",
        ),
        (
            [(0, 60, "W"), (30, 30, "N2"), (60, 60, "N3")],
            r"1 overlapping hypnogram stage\(s\) \(lines 2/3\)",
        ),
    ],
)
def test_hypnogram_rows_with_negative_durations_or_overlaps_are_refused(tmp_path, rows, message):
    write_signals_only(tmp_path / "rec.edf")
    write_csv_hypnogram(tmp_path / "rec_hypnogram.csv", rows)
    with pytest.raises(InputDataError, match=r"rec_hypnogram.csv: " + message):
        read_edf_recordings(tmp_path)


def test_overlapping_edf_hypnogram_annotations_are_refused(tmp_path):
    write_signals_only(tmp_path / "SC4001E0-PSG.edf")
    write_hypnogram(
        tmp_path / "SC4001EC-Hypnogram.edf", [(0, 90, "Sleep stage W"), (60, 60, "Sleep stage 2")]
    )
    with pytest.raises(
        InputDataError,
        match=r"SC4001EC-Hypnogram.edf: 1 overlapping hypnogram stage\(s\) \(annotations 1/2\)",
    ):
        read_edf_recordings(tmp_path)


def test_a_hypnogram_of_unknown_and_unscored_labels_only_is_refused(tmp_path):
    write_signals_only(tmp_path / "rec.edf")
    write_csv_hypnogram(tmp_path / "rec_hypnogram.csv", [(0, 60, "Deep"), (60, 60, "?")])
    with pytest.raises(
        InputDataError, match=r"rec_hypnogram.csv: none of its labels is a sleep stage \(Deep\)"
    ):
        read_edf_recordings(tmp_path)


def test_slow_channels_are_interpolated_from_their_own_samples(tmp_path):
    # Sleep-EDF stores the chin EMG as a 1-Hz RMS envelope beside 100-Hz EEG.
    envelope = np.r_[np.full(30, 3.0), np.full(30, 60.0), np.full(60, 3.0)]
    signals = [
        edfio.EdfSignal(
            np.random.default_rng(0).normal(0, 30, 12_000),
            100,
            label="EEG Fpz-Cz",
            physical_dimension="uV",
        ),
        edfio.EdfSignal(envelope, 1, label="EMG submental", physical_dimension="uV"),
    ]
    edfio.Edf(signals, data_record_duration=30).write(tmp_path / "SC4001E0-PSG.edf")
    recording = read_edf_recordings(tmp_path)["SC4001E0"]()
    emg = recording.signals[1]
    assert recording.sfreq == 100.0 and emg.shape == (12_000,)
    # linear between the stored values: no FFT ringing around the steps, never below 3 µV rms
    np.testing.assert_allclose(
        emg, np.interp(np.arange(12_000) / 100, np.arange(120), envelope), atol=0.01
    )
    assert emg.min() >= 3.0 - 0.01


def test_unstaged_epochs_are_counted_by_annotation(tmp_path, caplog):
    write_signals_only(tmp_path / "SC4001E0-PSG.edf", duration_s=180)
    write_hypnogram(
        tmp_path / "SC4001EC-Hypnogram.edf",
        [
            (0, 60, "Sleep stage W"),
            (60, 30, "Movement time"),
            (90, 30, "Sleep stage 3"),
            (120, 60, "Sleep stage ?"),
        ],
    )
    with caplog.at_level("WARNING", logger="epochstack.io.edf"):
        labels = read_edf_recordings(tmp_path)["SC4001E0"]().epoch_labels
    assert list(labels) == ["W", "W", None, "N3", None, None]
    assert (
        "SC4001E0: 3 of 6 epochs carry no sleep stage ('Movement time': 1, 'Sleep stage ?': 2)"
        in caplog.text
    )


def test_wake_margin_keeps_the_sleep_period_and_shifts_events(tmp_path, caplog):
    # events are annotations of the recording itself; the hypnogram file holds stages only
    write_signals_only(
        tmp_path / "SC4001E0-PSG.edf",
        duration_s=20 * 30,
        events=[(345, 5, "arousal"), (10, 5, "blink")],
    )
    stages = [
        (0, 240, "Sleep stage W"),
        (240, 90, "Sleep stage 2"),
        (330, 30, "Sleep stage R"),
        (360, 240, "Sleep stage W"),
    ]
    write_hypnogram(tmp_path / "SC4001EC-Hypnogram.edf", stages)
    with caplog.at_level("WARNING", logger="epochstack.io.edf"):
        recording = read_edf_recordings(tmp_path, wake_margin_min=1.0)["SC4001E0"]()
    # sleep is epochs 8-11; one minute (2 epochs) of wake on each side: epochs 6-13
    assert list(recording.epoch_labels) == ["W", "W", "N2", "N2", "N2", "REM", "W", "W"]
    assert recording.signals.shape == (2, 8 * 3000)
    assert recording.events.to_dict("list") == {
        "onset_s": [165.0],
        "duration_s": [5.0],
        "label": ["arousal"],
    }
    assert "6 epochs before and 6 after are dropped" in caplog.text
    whole = read_edf_recordings(tmp_path)["SC4001E0"]()
    assert len(whole.epoch_labels) == 20 and len(whole.events) == 2


def test_error_negative_wake_margin(tmp_path):
    write_signals_only(tmp_path / "rec.edf")
    with pytest.raises(InputDataError, match=r"dataset\.edf\.wake_margin_min"):
        read_edf_recordings(tmp_path, wake_margin_min=-5)


def test_loaders_carry_the_header_and_a_label_epoch_below_one_sample_is_refused(tmp_path):
    write_signals_only(tmp_path / "Nacht Müller.edf", sfreq=128)
    (loader,) = read_edf_recordings(tmp_path).values()
    header = loader.header  # known before the signals are read, for the checks before work
    assert (header.sfreq, header.n_channels, header.channel_types) == (128.0, 2, ("eeg", "eeg"))
    assert header.n_samples == loader().n_samples
    with pytest.raises(
        InputDataError, match=r"dataset\.edf\.label_epoch_s: .* 0\.001 s is shorter"
    ):
        read_edf_recordings(tmp_path, label_epoch_s=0.001)
