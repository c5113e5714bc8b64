"""Sleep-EDF-style folders of simulated nights, read back by the EDF reader and the sleep_edf env."""

import logging
import re

import edfio
import mne
import numpy as np
import pytest

from epochstack.errors import ParameterError
from epochstack.io.edf import read_edf_recordings
from epochstack.synthetic import simulate_sleep_night, write_sleep_edf_folder
from epochstack.synthetic.sleep_edf import emg_rms_envelope, rk_hypnogram

ALLOWED = {f"Sleep stage {s}" for s in ("W", "1", "2", "3", "4", "R", "?")} | {"Movement time"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("sleep-edf")
    write_sleep_edf_folder(path, n_subjects=2, hours=1.5, seed=3)
    return path


def test_files_are_named_and_laid_out_like_sleep_edf(folder):
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "SC4001E0-PSG.edf",
        "SC4001EC-Hypnogram.edf",
        "SC4011E0-PSG.edf",
        "SC4011EC-Hypnogram.edf",
    ]
    psg = edfio.read_edf(folder / "SC4001E0-PSG.edf")
    rates = {s.label: s.sampling_frequency for s in psg.signals}
    assert rates == {
        "EEG Fpz-Cz": 100.0,
        "EEG Pz-Oz": 100.0,
        "EOG horizontal": 100.0,
        "EMG submental": 1.0,
    }
    assert psg.data_record_duration == 30 and psg.duration == 1.5 * 3600
    texts = set()
    for hypnogram in folder.glob("*-Hypnogram.edf"):
        texts |= set(mne.read_annotations(hypnogram).description)
    assert texts <= ALLOWED and {"Sleep stage W", "Sleep stage 2", "Sleep stage R"} <= texts
    assert texts & {"Sleep stage 3", "Sleep stage 4"}


def test_emg_is_the_rms_envelope_of_the_simulated_chin_emg():
    night = simulate_sleep_night(0, hours=0.5, seed=3)
    emg = night.recording.signals[3]
    envelope = emg_rms_envelope(emg, 100.0)
    assert envelope.shape == (1800,) and (envelope >= 0).all()
    # a constant 30 µV rms 40-Hz tone gives 30 µV rms away from the edges
    tone = 30 * np.sqrt(2) * np.sin(2 * np.pi * 40 * np.arange(6000) / 100.0)
    np.testing.assert_allclose(emg_rms_envelope(tone, 100.0)[5:-5], 30, rtol=0.02)


def test_hypnogram_scores_rk_stages_movement_and_unscorable_epochs():
    night = simulate_sleep_night(5, hours=2.0, seed=3)
    texts = np.array(rk_hypnogram(night))
    labels = night.recording.epoch_labels
    staged = ~np.isin(texts, ["Sleep stage ?", "Movement time"])
    n3_texts = set(texts[staged & (labels == "N3")])
    assert n3_texts <= {"Sleep stage 3", "Sleep stage 4"} and n3_texts
    assert set(texts[staged & (labels == "REM")]) == {"Sleep stage R"}
    assert texts[-1] == "Sleep stage ?"  # the night ends unscored, as in Sleep-EDF
    assert (texts[night.movement_time] == "Movement time").all()


def test_reader_pairs_the_files_interpolates_the_envelope_and_counts_unstaged_epochs(
    folder, caplog
):
    loaders = read_edf_recordings(folder)
    assert sorted(loaders) == ["SC4001E0", "SC4011E0"]
    with caplog.at_level(logging.WARNING, logger="epochstack.io.edf"):
        rec = loaders["SC4001E0"]()
    assert rec.subject_id == "SC400" and rec.sfreq == 100.0 and rec.signals.shape == (4, 540_000)
    stored = edfio.read_edf(folder / "SC4001E0-PSG.edf").signals[3].data
    emg = rec.signals[3]
    assert emg.min() >= stored.min() - 0.01  # interpolation, no ringing below the envelope's floor
    np.testing.assert_allclose(emg[::100], stored, atol=0.01)
    assert set(rec.epoch_labels) - {None} <= {"W", "N1", "N2", "N3", "REM"}
    n_unstaged = sum(label is None for label in rec.epoch_labels)
    assert n_unstaged >= 1
    assert re.search(
        rf"SC4001E0: {n_unstaged} of 180 epochs carry no sleep stage \(.*'Sleep stage \?': \d",
        caplog.text,
    )


def test_sleep_edf_env_gives_five_aasm_classes_and_excludes_unstaged_epochs(
    kedro_project, tmp_path
):
    write_sleep_edf_folder(tmp_path / "sc", n_subjects=4, hours=1.0, seed=3)
    params = {
        "dataset": {"edf": {"path": str(tmp_path / "sc")}},
        "splits": {"n_test_subjects": 1, "n_folds": 3},
    }
    kedro_project.run(["data_engineering"], params, env="sleep_edf")
    catalog = kedro_project.catalog(params, env="sleep_edf")
    table = catalog.load("epoch_table")
    report = catalog.load("data_quality_report")
    assert set(table.label) <= {"W", "N1", "N2", "N3", "REM"} and {"W", "N2", "N3", "REM"} <= set(
        table.label
    )
    assert report["excluded_by_reason"]["unknown_label"] >= 2 and report["n_epochs_kept"] == len(
        table
    )
    assert report["channel_names"] == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal", "EMG submental"]


def test_too_many_subjects_for_two_digits_is_refused(tmp_path):
    with pytest.raises(ParameterError, match="n_subjects"):
        write_sleep_edf_folder(tmp_path, n_subjects=101, hours=0.5)
