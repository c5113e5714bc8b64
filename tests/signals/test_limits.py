"""Physical parameters against the recordings' headers, before any work."""

import logging

import pytest

from epochstack.errors import InputDataError
from epochstack.signals.limits import check_against_data
from epochstack.signals.recording import Header

GB = 10**9
NIGHT = Header("night.edf", 100.0, 4, 8 * 3600 * 100, ("eeg", "eeg", "eog", "emg"))
CASES = Header(
    "Toy_TRAIN.ts", 10.0, 2, 64, ("misc", "misc"), epoched=True, rate_parameter="dataset.sfreq"
)
PRE = {
    "filters": {"eeg": {"l_freq": 0.3, "h_freq": 45.0}, "emg": {"l_freq": 10.0, "h_freq": None}},
    "notch_hz": None,
    "resample_hz": None,
    "epoch": {"window_s": 30.0, "step_s": 30.0},
}


def check(headers, tmp_path, memory=16 * GB, disk=100 * GB, n_parallel=1, **changes):
    pre = {**PRE, **changes}
    check_against_data(
        headers,
        pre,
        tmp_path,
        n_parallel=n_parallel,
        memory_bytes=memory,
        free_disk_bytes=disk,
    )


def test_the_default_night_passes_silently(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        check([NIGHT] * 10, tmp_path)
    assert caplog.records == []


def test_a_band_above_nyquist_is_refused_and_a_low_pass_above_it_is_skipped_with_a_warning(
    tmp_path, caplog
):
    slow = Header("slow.edf", 50.0, 4, 600 * 50, NIGHT.channel_types)
    with caplog.at_level(logging.WARNING):
        check([slow] * 3, tmp_path)  # eeg h_freq 45 Hz at 50 Hz: skipped, said once
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith("preprocessing.filters.eeg.h_freq=45 Hz is at or above the Nyquist")
    assert "slow.edf (25 Hz at 50 Hz): no low-pass is applied to its eeg channels" in warning
    filters = {"eeg": {"l_freq": 30.0, "h_freq": None}, "emg": {"l_freq": 40.0, "h_freq": None}}
    with pytest.raises(InputDataError) as error:
        check([slow], tmp_path, filters=filters)
    message = str(error.value)  # both bands named in one line
    assert "preprocessing.filters.eeg.l_freq: 30 Hz is at or above the Nyquist" in message
    assert "preprocessing.filters.emg.l_freq: 40 Hz" in message


def test_resampling_that_would_allocate_terabytes_is_refused_naming_the_parameter(tmp_path):
    with pytest.raises(
        InputDataError, match=r"^preprocessing\.resample_hz: night\.edf at 1e\+09 Hz"
    ):
        check([NIGHT], tmp_path, resample_hz=1e9)
    with pytest.raises(
        InputDataError, match=r"^preprocessing\.resample_hz: 1e-05 Hz is below 1/1000"
    ):
        check([NIGHT], tmp_path, resample_hz=1e-5)


def test_memory_is_shared_by_the_workers_running_at_once(tmp_path):
    overlapping = {"window_s": 30.0, "step_s": 0.5}  # 60 copies of every sample
    check([NIGHT], tmp_path, memory=32 * GB, epoch=overlapping)  # about 10 GB of epochs
    with pytest.raises(
        InputDataError, match=r"preprocessing\.epoch\.step_s: .*executor\.n_workers"
    ):
        check([NIGHT] * 4, tmp_path, memory=32 * GB, n_parallel=4, epoch=overlapping)


def test_epoch_lengths_against_a_sample_and_the_recordings(tmp_path):
    with pytest.raises(InputDataError, match=r"preprocessing\.epoch: window 0\.01 s / step 30 s"):
        check([NIGHT], tmp_path, epoch={"window_s": 0.01, "step_s": 30.0})
    with pytest.raises(InputDataError, match=r"window_s: 86400 s is longer than every recording"):
        check([NIGHT], tmp_path, epoch={"window_s": 86400.0, "step_s": 86400.0})
    short = Header("nap.edf", 100.0, 4, 20 * 100, NIGHT.channel_types)
    with pytest.raises(InputDataError, match=r"^nap\.edf: recording is 20\.0 s long"):
        check([NIGHT, short], tmp_path)


def test_an_epoch_store_larger_than_the_free_disk_is_refused(tmp_path):
    with pytest.raises(InputDataError, match=r"each sample in 30 overlapping epochs.*are free"):
        check([NIGHT] * 10, tmp_path, disk=GB, epoch={"window_s": 30.0, "step_s": 1.0})


def test_absurd_rates_warn_with_the_parameter_and_epoched_sources_skip_resampling(tmp_path, caplog):
    fast = Header("Toy_TRAIN.ts", 1e6, 2, 64, ("misc", "misc"), True, 1, "dataset.sfreq")
    slow = Header("Toy_TRAIN.ts", 0.01, 2, 64, ("misc", "misc"), True, 1, "dataset.sfreq")
    for header in (fast, slow):
        with caplog.at_level(logging.WARNING):
            check([header], tmp_path)
    said = [r.getMessage() for r in caplog.records]
    assert said[0].startswith("dataset.sfreq: a sampling rate of 1e+06 Hz is outside 0.1 Hz..100")
    assert said[1].startswith("dataset.sfreq: a sampling rate of 0.01 Hz is outside")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        check([CASES] * 50, tmp_path, resample_hz=100.0)
    (said,) = [r.getMessage() for r in caplog.records]
    assert said.startswith("preprocessing.resample_hz=100 Hz is not applied to Toy_TRAIN.ts")
    assert "kept at 10 Hz" in said
