import numpy as np
import pandas as pd
import pytest
from scipy import signal

from epochstack.errors import InputDataError
from epochstack.signals import preprocessing as pp
from epochstack.signals.recording import Recording


def make_recording(seconds=120.0, sfreq=100.0, labels=None, events=None, n_channels=2):
    rng = np.random.default_rng(0)
    n = int(seconds * sfreq)
    return Recording(
        recording_id="rec-1",
        subject_id="sub-1",
        signals=rng.normal(0, 10, (n_channels, n)).astype(np.float32),
        sfreq=sfreq,
        channel_names=[f"EEG {i}" for i in range(n_channels)],
        channel_types=["eeg"] * n_channels,
        epoch_labels=None if labels is None else np.array(labels, dtype=object),
        label_epoch_s=30.0 if labels is not None else None,
        events=events,
        source="rec-1.edf",
    )


def test_three_class_mapping_and_unknown_labels():
    out = pp.map_labels(
        np.array(["W", "N1", "N2", "N3", "REM", "?", None, "Movement"], dtype=object), "three_class"
    )
    assert list(out) == ["Wake", "NREM", "NREM", "NREM", "REM", None, None, None]


def test_labels_of_another_vocabulary_pass_through_but_never_join_mapped_classes():
    classes = np.array(["Standing", "Running", "?"], dtype=object)
    assert list(pp.map_labels(classes, "three_class")) == ["Standing", "Running", None]
    with pytest.raises(
        InputDataError,
        match=r"night.csv: labels \['Deep'\] are not in dataset.label_mapping 'three_class'",
    ):
        pp.map_labels(np.array(["W", "Deep", "N2"], dtype=object), "three_class", "night.csv")


def test_classes_of_two_vocabularies_across_recordings_are_refused():
    table = pd.DataFrame(
        {"recording_id": ["a", "a", "b", "b"], "label": ["Wake", "NREM", "Deep", None]}
    )
    with pytest.raises(InputDataError, match=r"recordings \['b'\]: labels \['Deep'\]"):
        pp.check_mapped_classes(table, "three_class")
    pp.check_mapped_classes(table.assign(label=["Wake", "NREM", "REM", None]), "three_class")
    pp.check_mapped_classes(table, "none")


def test_unknown_mapping_is_a_clear_error():
    with pytest.raises(InputDataError, match="dataset.label_mapping"):
        pp.map_labels(np.array(["W"]), "five_class")


def test_epoching_windows_times_and_hypnogram_labels():
    rec = make_recording(seconds=120, labels=["W", "N2", "N3", "REM"])
    ep = pp.epoch_recording(rec, window_s=30, step_s=30)
    assert ep.epochs.shape == (4, 2, 3000)
    np.testing.assert_array_equal(ep.t_start_s, [0, 30, 60, 90])
    assert list(ep.labels) == ["W", "N2", "N3", "REM"]
    np.testing.assert_array_equal(ep.epochs[1], rec.signals[:, 3000:6000])


def test_overlapping_epochs_take_the_label_at_their_centre():
    rec = make_recording(seconds=120, labels=["W", "N2", "N3", "REM"])
    ep = pp.epoch_recording(rec, window_s=30, step_s=15)
    assert ep.n_epochs == 7
    # centre of epoch 1 is at 30 s -> second hypnogram epoch
    assert list(ep.labels[:3]) == ["W", "N2", "N2"]


def test_event_overlap_labels():
    events = pd.DataFrame({"onset_s": [40.0], "duration_s": [35.0], "label": ["seizure"]})
    rec = make_recording(seconds=120, events=events)
    ep = pp.epoch_recording(rec, window_s=30, step_s=30, min_event_overlap=0.5)
    # epoch [30,60) overlaps 20 s (0.67), [60,90) overlaps 15 s (0.5)
    assert list(ep.labels) == ["background", "seizure", "seizure", "background"]


def test_bandpass_is_zero_phase_and_removes_out_of_band_power():
    sfreq = 100.0
    t = np.arange(0, 20, 1 / sfreq)
    ten, forty = np.sin(2 * np.pi * 10 * t), np.sin(2 * np.pi * 40 * t)
    out = pp.filter_signals(
        np.stack([ten + forty]), sfreq, ["eeg"], {"eeg": {"l_freq": 0.3, "h_freq": 20.0}}
    )[0]
    mid = slice(500, -500)  # 5 s from the edges: the 0.3 Hz high-pass rings that long
    np.testing.assert_allclose(out[mid], ten[mid], atol=0.02)  # no phase shift, 40 Hz gone
    f, p = signal.welch(out, fs=sfreq, nperseg=400)
    assert p[np.argmin(abs(f - 40))] < 1e-4 * p[np.argmin(abs(f - 10))]


def test_filters_apply_per_channel_type_only():
    sfreq = 100.0
    x = np.random.default_rng(1).normal(size=(2, 2000)).astype(np.float32)
    out = pp.filter_signals(
        x, sfreq, ["eeg", "acc"], {"eeg": {"l_freq": 1.0, "h_freq": 10.0}, "acc": {}}
    )
    np.testing.assert_array_equal(out[1], x[1])
    assert not np.allclose(out[0], x[0])


def test_resample_changes_rate_and_length():
    rec = pp.resample(make_recording(seconds=60, sfreq=256.0), 100.0)
    assert rec.sfreq == 100.0 and rec.signals.shape[1] == 6000


def test_nan_run_is_reported_with_channel_and_time():
    rec = make_recording(seconds=60)
    rec.signals[1, 1000:1500] = np.nan
    with pytest.raises(
        InputDataError,
        match=r"rec-1.edf: channel 'EEG 1' has NaN/inf samples from 10.00 s \(5.00 s long",
    ):
        pp.validate_recording(rec)


def test_hypnogram_that_does_not_cover_the_recording_is_rejected():
    rec = make_recording(seconds=300, labels=["W", "N2"])
    with pytest.raises(InputDataError, match="labels cover 60 s of a 300 s recording"):
        pp.validate_recording(rec)


def test_missing_channel_lists_the_available_ones():
    with pytest.raises(
        InputDataError, match=r"channel\(s\) \['EMG'\] not found; available: \['EEG 0', 'EEG 1'\]"
    ):
        pp.pick_channels(make_recording(), ["EEG 0", "EMG"])


def test_pick_channels_reorders():
    rec = pp.pick_channels(make_recording(n_channels=3), ["EEG 2", "EEG 0"])
    assert rec.channel_names == ["EEG 2", "EEG 0"] and rec.signals.shape[0] == 2


def test_artefact_flags():
    rng = np.random.default_rng(2)
    epochs = rng.normal(0, 20, (4, 2, 1000)).astype(np.float32)
    epochs[1, 0] = 0.0  # flat line
    epochs[2, 1] = np.clip(epochs[2, 1] * 10, -50, 50)  # clipped
    epochs[3, 0, 10] = 2000.0  # extreme
    flags = pp.artefact_flags(
        epochs,
        ["eeg", "eeg"],
        {"flat_std": 0.01, "clip_fraction": 0.05, "extreme_abs": {"eeg": 500}},
    )
    assert list(flags["flag_flat"]) == [False, True, False, False]
    assert list(flags["flag_clipped"]) == [False, False, True, False]
    assert list(flags["flag_extreme"]) == [False, False, False, True]
