import numpy as np
import pytest
from scipy import signal

from epochstack.synthetic.seizure import SEIZURE_CHANNELS, generate_seizure_recording

HOURS = 1.0
SFREQ = 25.0


@pytest.fixture(scope="module")
def recordings():
    return [generate_seizure_recording(i, hours=HOURS, seed=7) for i in range(3)]


def _magnitude_band_power(rec, start_s, stop_s, low=3.0, high=8.0):
    acc = rec.signals[:3, int(start_s * rec.sfreq) : int(stop_s * rec.sfreq)]
    f, psd = signal.welch(np.linalg.norm(acc, axis=0), fs=rec.sfreq, nperseg=int(4 * rec.sfreq))
    return psd[(f >= low) & (f <= high)].sum() * (f[1] - f[0])


def _seizure_mask(rec):
    t = np.arange(rec.n_samples) / rec.sfreq
    mask = np.zeros(rec.n_samples, dtype=bool)
    for onset, duration in zip(rec.events.onset_s, rec.events.duration_s, strict=True):
        mask |= (t >= onset) & (t < onset + duration)
    return mask


def test_same_seed_is_identical_and_another_seed_differs():
    a = generate_seizure_recording(1, hours=0.2, seed=3)
    b = generate_seizure_recording(1, hours=0.2, seed=3)
    c = generate_seizure_recording(1, hours=0.2, seed=4)
    np.testing.assert_array_equal(a.signals, b.signals)
    assert a.events.equals(b.events)
    assert not np.array_equal(a.signals, c.signals)


def test_subjects_differ_and_do_not_depend_on_each_other(recordings):
    again = generate_seizure_recording(2, hours=HOURS, seed=7)  # generated alone, not after 0 and 1
    np.testing.assert_array_equal(again.signals, recordings[2].signals)
    assert not np.array_equal(recordings[0].signals, recordings[1].signals)


def test_layout_units_and_identifiers(recordings):
    rec = recordings[1]
    assert rec.recording_id == "sub-001_day-1" and rec.subject_id == "sub-001"
    assert rec.channel_names == SEIZURE_CHANNELS == ["ACC x", "ACC y", "ACC z", "HR"]
    assert rec.channel_types == ["acc", "acc", "acc", "hr"]
    assert rec.signals.dtype == np.float32 and rec.signals.shape == (4, int(HOURS * 3600 * SFREQ))
    assert rec.epoch_labels is None and rec.source == "synthetic"
    assert list(rec.events.columns) == ["onset_s", "duration_s", "label"]
    # gravity is in the accelerometer: the magnitude averages ~1 g
    assert 0.9 < np.median(np.linalg.norm(rec.signals[:3], axis=0)) < 1.1
    assert 45 < np.median(rec.signals[3]) < 90


def test_seizures_are_inside_the_recording_and_last_20_to_120_s(recordings):
    for rec in recordings:
        events = rec.events
        assert len(events) >= 1 and set(events.label) == {"seizure"}
        assert (events.onset_s > 0).all() and (
            events.onset_s + events.duration_s < rec.duration_s
        ).all()
        assert events.duration_s.between(20, 120).all()


def test_rhythmic_mimics_are_present_but_not_labelled(recordings):
    labelled = unlabelled_rhythmic = 0
    for rec in recordings:
        assert _seizure_mask(rec).sum() / rec.sfreq == pytest.approx(
            rec.events.duration_s.sum(), abs=len(rec.events)
        )
        labelled += len(rec.events)
        windows = np.arange(0, rec.duration_s - 30, 30)
        power = np.array([_magnitude_band_power(rec, s, s + 30) for s in windows])
        seizure = np.array(
            [_seizure_mask(rec)[int(s * SFREQ) : int((s + 30) * SFREQ)].any() for s in windows]
        )
        unlabelled_rhythmic += int((power[~seizure] > 20 * np.median(power)).sum())
    # brushing, clapping, shaking and movement bursts: strong 3-8 Hz movement with no event
    assert unlabelled_rhythmic > labelled
    assert 1 <= len(generate_seizure_recording(0, hours=4.0, seed=7).events) <= 3


def test_seizures_have_rhythmic_movement_and_raise_heart_rate(recordings):
    for rec in recordings:
        rest_hr = np.median(rec.signals[3])
        quiet = np.median(
            [_magnitude_band_power(rec, s, s + 30) for s in range(0, int(rec.duration_s) - 30, 30)]
        )
        for onset, duration in zip(rec.events.onset_s, rec.events.duration_s, strict=True):
            assert _magnitude_band_power(rec, onset, onset + duration) > 20 * quiet
            during = rec.signals[3, int(onset * SFREQ) : int((onset + duration) * SFREQ)]
            assert during.mean() > rest_hr + 5


def test_too_short_or_too_slow_is_rejected():
    with pytest.raises(ValueError, match="hours_per_subject"):
        generate_seizure_recording(0, hours=0.01)
    with pytest.raises(ValueError, match="sfreq"):
        generate_seizure_recording(0, hours=1.0, sfreq=10.0)
