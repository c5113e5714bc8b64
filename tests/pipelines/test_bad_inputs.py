"""Bad and hostile input through the real command line, as a new user meets it.

Every case runs ``kedro run --pipelines data_engineering --params ...`` in a copy of the project
that already holds the outputs of a good run, and must end with exit status 1, at most 60 lines
of output, no traceback, a last line ``InputDataError: <file or parameter>: <problem> Fix: ...``
naming what is wrong, and data/ byte-identical. Inputs are small files built once per module.
Parameter-schema cases share one run (the schema reports every wrong parameter in one line);
each keeps its own assertion on the message.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import edfio
import h5py
import numpy as np
import pandas as pd
import pytest

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
    "executor.n_workers=0,dataset.uea.unequal_length=stretch,dataset.label_mapping=five_class"
)
CASES = [
    Case("param_n_folds_one", SCHEMA, (r"splits\.n_folds", r"greater than or equal to 2")),
    Case("param_unknown_format", SCHEMA, (r"dataset\.format", r"'xdf'")),
    Case("param_negative_window", SCHEMA, (r"preprocessing\.epoch\.window_s", r"greater than 0")),
    Case("param_typo_key", SCHEMA, (r"dataset\.edf\.pathh", r"not a known parameter")),
    Case("param_zero_workers", SCHEMA, (r"executor\.n_workers", r"greater than or equal to 1")),
    Case("param_unequal_length_value", SCHEMA, (r"dataset\.uea\.unequal_length", r"'stretch'")),
    Case("param_label_mapping", SCHEMA, (r"dataset\.label_mapping", r"'five_class'")),
    Case(
        "param_storage_password",
        "optuna_storage=postgresql://ana:s3cret@db/optuna",
        (r"optuna_storage", r"password"),
    ),
    # synthetic
    Case(
        "synthetic_window_too_short",
        f"{SMALL},preprocessing.epoch.window_s=0.01,preprocessing.epoch.step_s=0.01",
        (r"preprocessing\.epoch", r"too short"),
    ),
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
        "edf_unsafe_file_name",
        "dataset.format=edf,dataset.edf.path={I}/edf_space",
        (r"night one\.edf", r"recording_id 'night one' is not a safe identifier"),
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
        (r"Label_TRAIN\.ts", r"line 8: label 'down' is not among @classLabel"),
    ),
    Case(
        "ts_missing_values",
        "dataset.format=uea_ts,dataset.train_path={I}/ts/Gap_TRAIN.ts,dataset.test_path={I}/ts/Toy_TEST.ts",
        (r"Gap_TRAIN\.ts", r"line 9: .*missing values"),
    ),
    Case(
        "ts_unlabelled_train",
        "dataset.format=uea_ts,dataset.train_path={I}/ts/Toy_TEST.ts,dataset.test_path={I}/ts/Toy_TRAIN.ts",
        (r"Toy_TEST\.ts", r"@classLabel false, but training needs labels"),
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
        "csv_id_with_slash",
        "dataset.format=csv,dataset.csv.signals_path={I}/csv/slash.csv,dataset.csv.label_column=label",
        (r"slash\.csv", r"recording_id 'ward/c02' is not a safe identifier"),
    ),
    Case(
        "csv_path_traversal",
        "dataset.format=csv,dataset.csv.signals_path={I}/csv/escape.csv,dataset.csv.label_column=label",
        (r"escape\.csv", rf"recording_id '\.\./\.\./\.\./\.\./{ESCAPE}' is not a safe identifier"),
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


def _ts(path, n_cases, lengths=None, classes=("left", "right", "up"), labels=True, rows=None):
    rng = np.random.default_rng(len(path.name))
    lengths = lengths or [64] * n_cases
    header = [
        "@problemName Toy",
        "@univariate false",
        "@dimensions 2",
        f"@equalLength {str(len(set(lengths)) == 1).lower()}",
        f"@classLabel {'true ' + ' '.join(classes) if labels else 'false'}",
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
        "slash": lambda t: t.assign(recording_id=t.recording_id.replace("c02", "ward/c02")),
        "escape": lambda t: t.assign(
            recording_id=t.recording_id.replace("c03", f"../../../../{ESCAPE}")
        ),
    }
    for name, spoil in spoiled.items():
        spoil(clean.copy()).to_csv(root / "csv" / f"{name}.csv", index=False)
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

    def kedro_run(self, params: str) -> subprocess.CompletedProcess:
        if params not in self.results:
            env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
            env.update(COLUMNS="200", PYTHONWARNINGS="ignore")
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


def test_the_corpus_spans_every_format_and_the_parameters():
    """At least 30 cases; each format and the parameters have several."""
    kinds = [case.name.split("_")[0] for case in CASES]
    assert len(CASES) >= 30
    assert all(kinds.count(kind) >= 2 for kind in ("param", "synthetic", "edf", "h5", "ts", "csv"))
