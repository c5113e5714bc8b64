"""Bad, hostile and unusual input through the real command line, as a new user meets it.

Every refused case runs ``kedro run --pipelines data_engineering --params ...`` in a copy of the
project that already holds the outputs of a good run, and must end with exit status 1, at most
60 lines of output, no traceback, a last line ``InputDataError: <file or parameter>: <problem>
Fix: ...`` naming what is wrong, and data/ byte-identical. The classes: parameters the schema
refuses; parameters with a physical meaning that the recordings cannot satisfy (checked before
any work); files a parser cannot read (every reader names the file, never a pandas/h5py/MNE
traceback); malformed content. Cases that share one run report every problem in one line
(schema, physical parameters); each keeps its own assertion on the message.

Accepted cases (``ACCEPTED``) are inputs a user would call valid (names with spaces and
non-ASCII letters, tab-separated ``.ts`` headers, Windows-1252 CSV, aeon's own data sets) or
that the pipeline changes on its way (ragged ``.ts`` cases, a low-pass above Nyquist): exit 0,
and a warning naming what was changed. Inputs are small files built once per module.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aeon
import edfio
import h5py
import numpy as np
import pandas as pd
import pytest

from epochstack.ids import SAFE_ID
from tests.conftest import KedroProject

pytestmark = pytest.mark.integration

# 4 subjects of 15 min: 2 CV folds + 2 held-out subjects, outputs in seconds.
SMALL = "dataset.synthetic.n_subjects=4,dataset.synthetic.hours_per_subject=0.25,splits.n_folds=2"
GOOD_RUN = SMALL
ESCAPE = "bad_inputs_escape"  # file name a path-traversal id would write outside the project
EPOCH_S, FS = 30.0, 50


@dataclass(frozen=True)
class Case:
    name: str
    params: str  # --params value; "{I}" stands for the folder of the built inputs
    expect: tuple[str, ...]  # regexes the one-line error must match (what is named, the problem)


# Parameters the schema refuses before any node runs: one run, one line naming each.
SCHEMA = (
    "splits.n_folds=1,dataset.format=xdf,preprocessing.epoch.window_s=-30,dataset.edf.pathh=x,"
    "executor.n_workers=0,dataset.uea.unequal_length=stretch,dataset.label_mapping=five_class,"
    "preprocessing.epoch.step_s=inf,preprocessing.notch_hz=.inf,preprocessing.filters.eog.l_freq=40"
)
# Physically impossible for the data (100-Hz synthetic nights of 15 min), found before any
# recording is read: one run per group, one line naming each parameter.
PHYSICAL_BAND = (
    f"{SMALL},preprocessing.epoch.window_s=0.01,preprocessing.epoch.step_s=0.01,"
    "preprocessing.filters.eeg.l_freq=60,preprocessing.filters.eeg.h_freq=null,"
    "preprocessing.filters.emg.l_freq=70"
)
PHYSICAL_SIZE = (
    f"{SMALL},preprocessing.resample_hz=1e9,preprocessing.epoch.window_s=100000,"
    "preprocessing.epoch.step_s=100000"
)
PHYSICAL_RATE = f"{SMALL},dataset.synthetic.sfreq=1e9,preprocessing.resample_hz=0.0001"
CASES = [
    Case("param_n_folds_one", SCHEMA, (r"splits\.n_folds", r"greater than or equal to 2")),
    Case("param_unknown_format", SCHEMA, (r"dataset\.format", r"'xdf'")),
    Case("param_negative_window", SCHEMA, (r"preprocessing\.epoch\.window_s", r"greater than 0")),
    Case("param_typo_key", SCHEMA, (r"dataset\.edf\.pathh", r"not a known parameter")),
    Case("param_zero_workers", SCHEMA, (r"executor\.n_workers", r"greater than or equal to 1")),
    Case("param_unequal_length_value", SCHEMA, (r"dataset\.uea\.unequal_length", r"'stretch'")),
    Case("param_label_mapping", SCHEMA, (r"dataset\.label_mapping", r"'five_class'")),
    Case(
        "param_text_step", SCHEMA, (r"preprocessing\.epoch\.step_s", r"valid number \(got 'inf'\)")
    ),
    Case("param_infinite_notch", SCHEMA, (r"preprocessing\.notch_hz", r"finite number")),
    Case(
        "param_empty_band",
        SCHEMA,
        (r"preprocessing\.filters\.eog", r"l_freq 40 Hz is not below h_freq 35 Hz"),
    ),
    Case(
        "param_storage_password",
        "optuna_storage=postgresql://ana:s3cret@db/optuna",
        (r"optuna_storage", r"password"),
    ),
    # parameters against the data (checked before work starts)
    Case("physical_window_too_short", PHYSICAL_BAND, (r"preprocessing\.epoch: window 0\.01 s",)),
    Case(
        "physical_band_above_nyquist",
        PHYSICAL_BAND,
        (r"preprocessing\.filters\.eeg\.l_freq: 60 Hz is at or above the Nyquist frequency",),
    ),
    Case(
        "physical_second_band_above_nyquist",
        PHYSICAL_BAND,
        (r"preprocessing\.filters\.emg\.l_freq: 70 Hz .* \(50 Hz at 100 Hz\)",),
    ),
    Case(
        "physical_resample_hundreds_of_gb",
        PHYSICAL_SIZE,
        (r"preprocessing\.resample_hz: synthetic at 1e\+09 Hz .* TB of memory",),
    ),
    Case(
        "physical_window_longer_than_recordings",
        PHYSICAL_SIZE,
        (r"preprocessing\.epoch\.window_s: 100000 s is longer than every recording",),
    ),
    Case(
        "physical_synthetic_rate_hundreds_of_gb",
        PHYSICAL_RATE,
        (r"dataset\.synthetic\.sfreq: synthetic at 1e\+09 Hz .* TB of memory",),
    ),
    Case(
        "physical_resample_below_one_sample",
        PHYSICAL_RATE,
        (r"preprocessing\.resample_hz: 0\.0001 Hz is below 1/1000 of the rate",),
    ),
    # synthetic
    Case(
        "synthetic_too_few_subjects",
        "dataset.synthetic.n_subjects=3,dataset.synthetic.hours_per_subject=0.25,splits.n_folds=4",
        (r"splits\.n_folds", r"4 folds need at least 4 training subjects; there are 1"),
    ),
    # EDF / EDF+
    Case(
        "edf_folder_missing",
        "dataset.format=edf,dataset.edf.path={I}/edf_nowhere",
        (r"edf_nowhere", r"folder not found"),
    ),
    Case(
        "edf_empty_file",
        "dataset.format=edf,dataset.edf.path={I}/edf_empty",
        (r"n02\.edf", r"cannot read the EDF/BDF header"),
    ),
    Case(
        "edf_hypnogram_negative_duration",
        "dataset.format=edf,dataset.edf.path={I}/edf_negative",
        (r"n02-Hypnogram\.csv", r"negative or missing onset/duration \(lines 3\)"),
    ),
    Case(
        "edf_hypnogram_overlap",
        "dataset.format=edf,dataset.edf.path={I}/edf_overlap",
        (r"n01-Hypnogram\.csv", r"overlapping hypnogram stage"),
    ),
    Case(
        "edf_hypnogram_vocabulary",
        "dataset.format=edf,dataset.edf.path={I}/edf_vocabulary",
        (r"n02-Hypnogram\.csv", r"none of its labels is a sleep stage \(Deep, Light\)"),
    ),
    Case(
        "edf_hypnogram_short",
        "dataset.format=edf,dataset.edf.path={I}/edf_short",
        (r"n02\.edf", r"labels cover 150 s of a 600 s recording"),
    ),
    Case(
        "edf_orphan_hypnogram",
        "dataset.format=edf,dataset.edf.path={I}/edf_orphan",
        (r"n09_hypnogram\.csv", r"matches no recording"),
    ),
    Case(
        "edf_hypnogram_binary",
        "dataset.format=edf,dataset.edf.path={I}/edf_binary_hypnogram",
        (r"n02-Hypnogram\.csv", r"is a PNG image, not a CSV text file"),
    ),
    Case(
        "edf_label_epoch_below_one_sample",
        "dataset.format=edf,dataset.edf.path={I}/edf_space,dataset.edf.label_epoch_s=0.001",
        (r"dataset\.edf\.label_epoch_s", r"shorter than one sample of .* \(50 Hz\)"),
    ),
    Case(
        "edf_rate_not_expected",
        "dataset.format=edf,dataset.edf.path={I}/edf_negative,dataset.edf.expected_sfreq=128",
        (r"n01\.edf", r"sampling rate 50 Hz, expected 128 Hz"),
    ),
    # HDF5
    Case(
        "h5_file_missing",
        "dataset.format=h5,dataset.h5.x_path={I}/h5/nowhere.h5,dataset.h5.n_meta_columns=2",
        (r"nowhere\.h5", r"file not found"),
    ),
    Case(
        "h5_nan_sample",
        "dataset.format=h5,dataset.h5.x_path={I}/h5/nan.h5,dataset.h5.y_path={I}/h5/labels.csv,dataset.h5.n_meta_columns=2",
        (r"nan\.h5", r"NaN/inf samples in row 17 \(subject 2, column 40: nan\)"),
    ),
    Case(
        "h5_wrong_key",
        "dataset.format=h5,dataset.h5.x_path={I}/h5/good.h5,dataset.h5.dataset_key=X,dataset.h5.n_meta_columns=2",
        (r"good\.h5", r"no dataset 'X'; datasets in the file: \['features'\]"),
    ),
    Case(
        "h5_label_rows",
        "dataset.format=h5,dataset.h5.x_path={I}/h5/good.h5,dataset.h5.y_path={I}/h5/short_labels.csv,dataset.h5.n_meta_columns=2",
        (r"short_labels\.csv", r"10 label rows for 48 epochs"),
    ),
    Case(
        "h5_text_dataset",
        "dataset.format=h5,dataset.h5.x_path={I}/h5/strings.h5,dataset.h5.n_meta_columns=2",
        (r"strings\.h5", r"dataset 'features' holds \S+ values, not numbers"),
    ),
    Case(
        "h5_subject_missing",
        "dataset.format=h5,dataset.h5.x_path={I}/h5/no_subject.h5,dataset.h5.n_meta_columns=2",
        (r"no_subject\.h5", r"have no subject id"),
    ),
    # UEA .ts
    Case(
        "ts_same_file_twice",
        "dataset.format=uea_ts,dataset.train_path={I}/ts/Toy_TRAIN.ts,dataset.test_path={I}/ts/Toy_TRAIN.ts",
        (r"dataset\.test_path", r"same file as dataset\.train_path"),
    ),
    Case(
        "ts_unequal_refused",
        "dataset.format=uea_ts,dataset.train_path={I}/ts/Ragged_TRAIN.ts,dataset.test_path={I}/ts/Toy_TEST.ts,dataset.uea.unequal_length=error",
        (r"Ragged_TRAIN\.ts", r"cases of unequal length \(40\.\.64 points"),
    ),
    Case(
        "ts_undeclared_label",
        "dataset.format=uea_ts,dataset.train_path={I}/ts/Label_TRAIN.ts,dataset.test_path={I}/ts/Toy_TEST.ts",
        (r"Label_TRAIN\.ts", r"line 9: label 'down' is not among @classLabel"),
    ),
    Case(
        "ts_missing_values",
        "dataset.format=uea_ts,dataset.train_path={I}/ts/Gap_TRAIN.ts,dataset.test_path={I}/ts/Toy_TEST.ts",
        (r"Gap_TRAIN\.ts", r"line 10: .*missing values"),
    ),
    Case(
        "ts_unlabelled_train",
        "dataset.format=uea_ts,dataset.train_path={I}/ts/Toy_TEST.ts,dataset.test_path={I}/ts/Toy_TRAIN.ts",
        (r"Toy_TEST\.ts", r"@classLabel false, but training needs labels"),
    ),
    Case(
        "ts_binary",
        "dataset.format=uea_ts,dataset.train_path={I}/ts/Binary_TRAIN.ts,dataset.test_path={I}/ts/Toy_TEST.ts",
        (r"Binary_TRAIN\.ts", r"is a binary file, not a \.ts text file"),
    ),
    Case(
        "ts_test_missing",
        "dataset.format=uea_ts,dataset.train_path={I}/ts/Toy_TRAIN.ts,dataset.test_path={I}/ts/Nowhere_TEST.ts",
        (r"Nowhere_TEST\.ts", r"file not found"),
    ),
    # CSV
    Case(
        "csv_empty_recording_id",
        "dataset.format=csv,dataset.csv.signals_path={I}/csv/blank_ids.csv,dataset.csv.label_column=label",
        (r"blank_ids\.csv", r"60 row\(s\) have an empty 'recording_id'"),
    ),
    Case(
        "csv_nan_sample",
        "dataset.format=csv,dataset.csv.signals_path={I}/csv/nan.csv,dataset.csv.label_column=label",
        (
            r"nan\.csv",
            r"'acc_z' has 1 empty/NaN/inf value\(s\), the first on line 7502 \(recording 'c03'",
        ),
    ),
    Case(
        "csv_time_gap",
        "dataset.format=csv,dataset.csv.signals_path={I}/csv/gap.csv,dataset.csv.label_column=label",
        (r"gap\.csv", r"recording 'c02': irregular time step"),
    ),
    Case(
        "csv_event_negative",
        "dataset.format=csv,dataset.csv.signals_path={I}/csv/clean.csv,dataset.csv.label_column=label,dataset.csv.events_path={I}/csv/events_negative.csv",
        (r"events_negative\.csv", r"negative or missing onset/duration"),
    ),
    Case(
        "csv_mixed_vocabulary",
        "dataset.format=csv,dataset.csv.signals_path={I}/csv/stages.csv,dataset.csv.label_column=label",
        (r"stages\.csv", r"labels \['Deep'\] are not in dataset\.label_mapping 'three_class'"),
    ),
    Case(
        "csv_two_subjects_one_recording",
        "dataset.format=csv,dataset.csv.signals_path={I}/csv/two_subjects.csv,dataset.csv.label_column=label",
        (r"two_subjects\.csv", r"recording 'c01' has several subject ids"),
    ),
    Case(
        "csv_more_fields_than_header",
        "dataset.format=csv,dataset.csv.signals_path={I}/csv/extra_field.csv,dataset.csv.label_column=label",
        (r"extra_field\.csv", r"cannot be parsed as CSV: line 13 has 8 fields, the header 7"),
    ),
    Case(
        "csv_path_traversal",
        "dataset.format=csv,dataset.csv.signals_path={I}/csv/escape.csv,dataset.csv.label_column=label",
        (r"escape\.csv", rf"recording_id '\.\./\.\./\.\./\.\./{ESCAPE}' climbs out of its folder"),
    ),
]


@dataclass(frozen=True)
class Accepted:
    name: str
    params: str
    warnings: tuple[str, ...]  # regexes, each matched by one WARNING line
    check: Callable[[pd.DataFrame, dict], None]  # on the epoch table and the quality report


def _names_made_safe(originals: set[str]) -> Callable[[pd.DataFrame, dict], None]:
    def check(table: pd.DataFrame, report: dict) -> None:
        assert all(SAFE_ID.match(r) for r in table["recording_id"].unique())
        assert set(report["renamed_ids"].values()) == originals
        assert set(report["renamed_ids"]) <= set(table["recording_id"]) | set(table["subject_id"])

    return check


def _ts_cases(n_train: int, n_test: int) -> Callable[[pd.DataFrame, dict], None]:
    def check(table: pd.DataFrame, report: dict) -> None:
        counts = table["source_split"].value_counts().to_dict()
        assert counts == {"train": n_train, "test": n_test}, counts

    return check


AEON_DATA = Path(aeon.__file__).parent / "datasets" / "data"
VOWELS = AEON_DATA / "JapaneseVowels"
ACCEPTED = [
    Accepted(
        "edf_folder_and_file_names_with_spaces_and_non_ascii",
        "dataset.format=edf,dataset.edf.path={I}/Schlaf Daten ü,splits.n_folds=2,"
        "splits.test_subjects=[Nacht Müller]",
        (
            r"id\(s\) made safe for file names: 'Nacht Müller' -> 'Nacht-Muller-[0-9a-f]{8}'",
            r"preprocessing\.filters\.eeg\.h_freq=45 Hz is at or above the Nyquist frequency of "
            r".*\(25 Hz at 50 Hz\): no low-pass is applied to its eeg channels",
        ),
        _names_made_safe({"Nacht Müller", "睡眠 記録", "night one"}),
    ),
    Accepted(
        "csv_ids_with_slash_and_non_ascii_in_windows_1252",
        "dataset.format=csv,dataset.csv.signals_path={I}/csv/names_cp1252.csv,"
        "dataset.csv.label_column=label,splits.n_folds=2,splits.n_test_subjects=1",
        (
            r"names_cp1252\.csv: not UTF-8; read as Windows-1252",
            r"'ward/c02' -> 'ward-c02-[0-9a-f]{8}'",
        ),
        _names_made_safe({"Jürgen", "ward/c02", "Gang Müller"}),
    ),
    Accepted(
        "ts_tab_header_ragged_same_stem_absurd_rate",
        "dataset.format=uea_ts,dataset.train_path={I}/ts_same/Sakkade ä.ts,"
        "dataset.test_path={I}/ts_same/Sakkade ä.TS,dataset.sfreq=1000000",
        (
            r"Sakkade ä\.ts: 8 of 12 train cases \(40\.\.64 points\) resampled to 50 points",
            r"Sakkade ä\.TS: 4 of 6 test cases \(30\.\.64 points\) resampled to 50 points",
            r"have the same stem 'Sakkade ä'",
            r"Sakkade ä\.TS: 2 of 6 test cases are identical to training cases",
            r"dataset\.sfreq: a sampling rate of 1e\+06 Hz is outside 0\.1 Hz\.\.100 kHz",
            r"id\(s\) made safe for file names: 'Sakkade ä_train_00000' -> 'Sakkade-a_train",
        ),
        _ts_cases(12, 6),
    ),
    Accepted(
        "aeon_japanese_vowels_unequal_length",
        f"dataset.format=uea_ts,dataset.train_path={VOWELS}/JapaneseVowels_TRAIN.ts,"
        f"dataset.test_path={VOWELS}/JapaneseVowels_TEST.ts",
        (r"JapaneseVowels_TRAIN\.ts: 229 of 270 train cases \(7\.\.26 points\) resampled",),
        _ts_cases(270, 370),
    ),
]


# ----------------------------------------------------------------------------- inputs
def _night(rng, n_epochs):
    return np.repeat(rng.integers(0, 3, n_epochs // 4 + 1), 4)[:n_epochs]


def _edf(path, rng, minutes=10, annotations=None):
    n = int(minutes * 60 * FS)
    signal = edfio.EdfSignal(rng.normal(0, 30, n), FS, label="EEG Fz", physical_dimension="uV")
    edfio.Edf([signal], annotations=annotations).write(path)


def _hypnogram(path, rows):
    pd.DataFrame(rows, columns=["onset", "duration", "label"]).to_csv(path, index=False)


def _stages(rng, n_epochs, words=("W", "N2", "REM")):
    return [(i * EPOCH_S, EPOCH_S, words[s]) for i, s in enumerate(_night(rng, n_epochs))]


def _edf_folder(root, name, rng, bad=None, n=2):
    """``n`` EDF recordings of 10 min with CSV hypnograms; ``bad(folder)`` then spoils one."""
    folder = root / name
    folder.mkdir()
    for i in range(1, n + 1):
        _edf(folder / f"n{i:02d}.edf", rng)
        _hypnogram(folder / f"n{i:02d}-Hypnogram.csv", _stages(rng, 20))
    if bad:
        bad(folder)


def _csv_table(rng, n_recordings=4, seconds=120, fs=25):
    frames = []
    for r in range(1, n_recordings + 1):
        t = np.arange(seconds * fs) / fs
        frames.append(
            pd.DataFrame(
                {
                    "time": np.round(t, 4),
                    "recording_id": f"c{r:02d}",
                    "subject_id": f"s{r:02d}",
                    "acc_x": rng.normal(0, 0.2, t.size),
                    "acc_y": rng.normal(1, 0.2, t.size),
                    "acc_z": rng.normal(0, 0.2, t.size),
                    "label": np.where((t // 30) % 2 == 0, "rest", "walk"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _ts(
    path,
    n_cases,
    lengths=None,
    classes=("left", "right", "up"),
    labels=True,
    rows=None,
    sep=" ",
    seed=None,
):
    rng = np.random.default_rng(len(path.name) if seed is None else seed)
    lengths = lengths or [64] * n_cases
    header = [
        "% written by test_bad_inputs (ARFF-style comment)",
        f"@problemName{sep}Toy",
        f"@univariate{sep}false",
        f"@dimensions{sep}2",
        f"@equalLength{sep}{str(len(set(lengths)) == 1).lower()}",
        f"@classLabel{sep}{'true' + sep + sep.join(classes) if labels else 'false'}",
        "@data",
    ]
    cases = rows or [
        ":".join(",".join(f"{v:.3f}" for v in rng.normal(i % 3, 1, length)) for _ in range(2))
        + (f":{classes[i % len(classes)]}" if labels else "")
        for i, length in enumerate(lengths)
    ]
    path.write_text("\n".join(header + cases) + "\n")
    return cases


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-inputs")
    rng = np.random.default_rng(2026)

    # EDF with CSV hypnograms; each folder spoils one thing
    (root / "edf_empty").mkdir()
    _edf(root / "edf_empty" / "n01.edf", rng)
    (root / "edf_empty" / "n02.edf").write_bytes(b"")
    _edf_folder(
        root,
        "edf_negative",
        rng,
        lambda f: _hypnogram(
            f / "n02-Hypnogram.csv", [(0, 30, "W"), (30, -30, "N2"), (60, 540, "N2")]
        ),
    )
    _edf_folder(
        root,
        "edf_overlap",
        rng,
        lambda f: _hypnogram(f / "n01-Hypnogram.csv", [(0, 300, "W"), (240, 360, "N2")]),
    )
    _edf_folder(
        root,
        "edf_vocabulary",
        rng,
        lambda f: _hypnogram(
            f / "n02-Hypnogram.csv", _stages(rng, 20, words=("Deep", "Light", "Deep"))
        ),
    )
    _edf_folder(
        root, "edf_short", rng, lambda f: _hypnogram(f / "n02-Hypnogram.csv", _stages(rng, 5))
    )
    _edf_folder(
        root, "edf_orphan", rng, lambda f: _hypnogram(f / "n09_hypnogram.csv", _stages(rng, 20))
    )
    _edf_folder(root, "edf_space", rng, lambda f: _edf(f / "night one.edf", rng))
    _edf_folder(
        root,
        "edf_binary_hypnogram",
        rng,
        lambda f: (f / "n02-Hypnogram.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256))),
    )
    names = root / "Schlaf Daten ü"  # spaces and non-ASCII letters in folder and file names
    names.mkdir()
    for name in ("Nacht Müller", "睡眠 記録", "night one", "n04"):
        _edf(names / f"{name}.edf", rng)
        _hypnogram(names / f"{name}-Hypnogram.csv", _stages(rng, 20))

    # HDF5: 4 subjects x 12 epochs of 2 meta columns + 300 samples
    (root / "h5").mkdir()
    subjects = np.repeat(np.arange(1, 5), 12).astype(float)
    data = np.column_stack([subjects, np.arange(48), rng.normal(0, 20, (48, 300))])
    for name, spoil in (("good", None), ("nan", (17, 40)), ("no_subject", (5, 0))):
        matrix = data.copy()
        if spoil:
            matrix[spoil] = np.nan
        with h5py.File(root / "h5" / f"{name}.h5", "w") as h:
            h.create_dataset("features", data=matrix)
    with h5py.File(root / "h5" / "strings.h5", "w") as h:
        h.create_dataset(
            "features", data=data.astype(str).astype(object), dtype=h5py.string_dtype()
        )
    pd.DataFrame({"stage": np.tile([0, 1, 2], 16)}).to_csv(root / "h5" / "labels.csv", index=False)
    pd.DataFrame({"stage": np.tile([0, 1], 5)}).to_csv(
        root / "h5" / "short_labels.csv", index=False
    )

    # UEA .ts: 2 dimensions, classes left/right/up
    (root / "ts").mkdir()
    _ts(root / "ts" / "Toy_TRAIN.ts", 12)
    _ts(root / "ts" / "Toy_TEST.ts", 6, labels=False)
    _ts(root / "ts" / "Ragged_TRAIN.ts", 12, lengths=[64, 40, 50] * 4)
    cases = _ts(root / "ts" / "Label_TRAIN.ts", 12)
    _ts(
        root / "ts" / "Label_TRAIN.ts",
        12,
        rows=cases[:1] + [cases[1].rsplit(":", 1)[0] + ":down"] + cases[2:],
    )
    cases = _ts(root / "ts" / "Gap_TRAIN.ts", 12)
    _ts(
        root / "ts" / "Gap_TRAIN.ts",
        12,
        rows=cases[:2] + [cases[2].replace(",", ",?,", 1)] + cases[3:],
    )
    (root / "ts" / "Binary_TRAIN.ts").write_bytes(b"@problemName Toy\n\x00\x01" + bytes(range(256)))
    # one folder, one stem: tab-separated header, ragged cases, 2 test cases copied from training
    (root / "ts_same").mkdir()
    train = _ts(root / "ts_same" / "Sakkade ä.ts", 12, lengths=[64, 40, 50] * 4, sep="\t")
    test = _ts(root / "ts_same" / "Sakkade ä.TS", 4, lengths=[64, 30] * 2, seed=7)
    _ts(
        root / "ts_same" / "Sakkade ä.TS", 6, lengths=[64, 30] * 3, rows=test + [train[2], train[5]]
    )

    # CSV: 4 recordings of 2 min at 25 Hz, accelerometer in g, labels rest/walk
    (root / "csv").mkdir()
    clean = _csv_table(rng)
    clean.to_csv(root / "csv" / "clean.csv", index=False)
    spoiled = {
        "blank_ids": lambda t: t.assign(
            recording_id=t.recording_id.where(~t.index.isin(range(3000, 3060)), "")
        ),
        "nan": lambda t: t.assign(acc_z=t.acc_z.where(t.index != 7500, np.nan)),
        "gap": lambda t: t.assign(
            time=t.time + np.where((t.recording_id == "c02") & (t.index % 3000 > 1000), 2.0, 0.0)
        ),
        "stages": lambda t: t.assign(
            label=np.select([t.label == "rest", t.recording_id == "c02"], ["W", "Deep"], "N2")
        ),
        "two_subjects": lambda t: t.assign(subject_id=t.subject_id.where(t.index != 10, "s99")),
        "escape": lambda t: t.assign(
            recording_id=t.recording_id.replace("c03", f"../../../../{ESCAPE}")
        ),
    }
    for name, spoil in spoiled.items():
        spoil(clean.copy()).to_csv(root / "csv" / f"{name}.csv", index=False)
    lines = (root / "csv" / "clean.csv").read_text().splitlines()
    lines[12] += ",1.0"  # line 13 has one field more than the header
    (root / "csv" / "extra_field.csv").write_text("\n".join(lines) + "\n")
    names = {"c01": "Jürgen", "c02": "ward/c02", "c03": "Gang Müller"}
    clean.assign(recording_id=clean.recording_id.replace(names)).to_csv(
        root / "csv" / "names_cp1252.csv", index=False, encoding="cp1252"
    )
    pd.DataFrame(
        {
            "recording_id": ["c01", "c02"],
            "onset": [10.0, 20.0],
            "duration": [5.0, -5.0],
            "label": ["walk", "walk"],
        }
    ).to_csv(root / "csv" / "events_negative.csv", index=False)
    return root


# ----------------------------------------------------------------------------- runs
def _data_digest(project: Path) -> dict[str, str]:
    return {
        str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((project / "data").rglob("*"))
        if p.is_file()
    }


class CliProject(KedroProject):
    """A project copy run through the real ``kedro run`` command line; runs are cached by params."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.results: dict[str, subprocess.CompletedProcess] = {}

    def kedro_run(self, params: str, columns: int = 200) -> subprocess.CompletedProcess:
        """The run's output; log lines wrap at ``columns`` (wide: one line per message)."""
        if params not in self.results:
            env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
            env.update(COLUMNS=str(columns), PYTHONWARNINGS="ignore")
            kedro = Path(sys.executable).with_name("kedro")
            self.results[params] = subprocess.run(
                [str(kedro), "run", "--pipelines", "data_engineering", "--params", params],
                cwd=self.path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=600,
            )
        return self.results[params]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> CliProject:
    """A project whose data/ holds the outputs of a good run, with their digest."""
    project = CliProject(tmp_path_factory.mktemp("cli") / "project")
    good = project.kedro_run(GOOD_RUN)
    assert good.returncode == 0, good.stdout[-3000:]
    project.baseline = _data_digest(project.path)
    assert any(name.endswith("epoch_table.parquet") for name in project.baseline)
    return project


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_stops_with_one_clear_line_and_leaves_data_as_it_was(project, inputs, case):
    result = project.kedro_run(case.params.replace("{I}", str(inputs)))
    lines = result.stdout.rstrip("\n").splitlines()
    assert result.returncode == 1, result.stdout[-3000:]
    assert len(lines) <= 60, f"{len(lines)} lines:\n{result.stdout[-3000:]}"
    assert "Traceback" not in result.stdout, result.stdout[-3000:]
    last = lines[-1]
    assert re.match(r"(InputDataError|ParameterError): .+ Fix: ", last), last
    for pattern in case.expect:
        assert re.search(pattern, last), f"{pattern!r} not in: {last}"
    assert _data_digest(project.path) == project.baseline


def test_a_path_traversal_id_writes_nothing_outside_the_project(project, inputs):
    case = next(c for c in CASES if c.name == "csv_path_traversal")
    assert project.kedro_run(case.params.replace("{I}", str(inputs))).returncode == 1
    # the id climbs four folders from the staging folder (data/02_intermediate/<staging>)
    roots = [project.path.parents[1], inputs.parent]
    written = [p for root in roots for p in root.rglob(f"{ESCAPE}*")]
    assert written == []
    assert _data_digest(project.path) == project.baseline


@pytest.fixture(scope="module")
def accepting(tmp_path_factory) -> CliProject:
    """A project for inputs that must be accepted (its data/ is overwritten run after run)."""
    return CliProject(tmp_path_factory.mktemp("accepting") / "project")


@pytest.mark.parametrize("case", ACCEPTED, ids=[case.name for case in ACCEPTED])
def test_valid_or_repairable_input_is_accepted_and_the_changes_are_named(accepting, inputs, case):
    result = accepting.kedro_run(case.params.replace("{I}", str(inputs)), columns=2000)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Traceback" not in result.stdout
    warned = [line for line in result.stdout.splitlines() if re.search(r"\bWARNING\b", line[:40])]
    for pattern in case.warnings:
        assert any(re.search(pattern, line) for line in warned), f"{pattern!r} in no warning:\n" + (
            "\n".join(warned)
        )
    catalog = accepting.catalog()
    case.check(catalog.load("epoch_table"), catalog.load("data_quality_report"))


def test_every_aeon_classification_set_is_read(caplog):
    """aeon's shipped .ts classification sets (``%`` comments, unequal lengths, one case
    repeated between train and test) are read, not refused; regression sets are named as such."""
    from epochstack.errors import InputDataError
    from epochstack.io.uea import read_uea_pair

    pairs = [
        (train, train.with_name(train.name.replace("_TRAIN", "_TEST")))
        for train in sorted(AEON_DATA.glob("*/*_TRAIN.ts"))
    ]
    read, regression = [], []
    for train, test in pairs:
        if not test.exists():
            continue
        if "@targetlabel true" in train.read_text().lower():
            with pytest.raises(InputDataError, match="regression problem"):
                read_uea_pair(train, test)
            regression.append(train.stem)
            continue
        cases = read_uea_pair(train, test)
        assert {c.source_split for c in cases} == {"train", "test"}
        read.append(train.stem)
    assert {"JapaneseVowels_TRAIN", "UnitTest_TRAIN", "BasicMotions_TRAIN"} <= set(read)
    assert len(read) >= 10 and regression


def test_the_corpus_spans_every_format_and_every_class():
    """At least 30 refused cases; each format, the parameters and the physical parameters have
    several; accepted cases cover names, encodings, .ts headers and aeon's data."""
    kinds = [case.name.split("_")[0] for case in CASES]
    assert len(CASES) >= 30
    assert all(kinds.count(kind) >= 2 for kind in ("param", "physical", "edf", "h5", "ts", "csv"))
    assert {case.name.split("_")[0] for case in ACCEPTED} >= {"edf", "csv", "ts", "aeon"}
