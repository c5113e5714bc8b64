from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from epochstack.errors import InputDataError
from epochstack.io.uea import read_uea_pair, read_uea_ts

UEA = Path(__file__).resolve().parents[2] / "data" / "01_raw" / "uea"  # shipped with the repo

HEADER = "@problemName Toy\n@univariate false\n@dimensions 2\n@equalLength true\n@classLabel true a b\n@data\n"
GOOD_ROWS = "1,2,3:4,5,6:a\n7,8,9:1,2,3:b\n"


def write(tmp_path, text, name="Toy_TRAIN.ts"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("split", ["train", "test"])
def test_basic_motions(split):
    cases = read_uea_ts(UEA / f"BasicMotions_{split.upper()}.ts", split=split, sfreq=10.0)
    assert len(cases) == 40
    assert {c.epochs.shape for c in cases} == {(1, 6, 100)}
    assert Counter(c.labels[0] for c in cases) == {
        "Standing": 10,
        "Running": 10,
        "Walking": 10,
        "Badminton": 10,
    }
    first = cases[0]
    assert first.recording_id == first.subject_id == f"BasicMotions_{split}_00000"
    assert first.source_split == split
    assert first.sfreq == 10.0
    assert first.channel_names == [f"dim_{d}" for d in range(6)]
    assert first.channel_types == ["misc"] * 6
    assert first.epochs.dtype == np.float32


def test_eyes_open_shut_infers_dimensions_and_trusts_the_data_length():
    train = read_uea_ts(UEA / "EyesOpenShut_TRAIN.ts", split="train")
    test = read_uea_ts(UEA / "EyesOpenShut_TEST.ts", split="test")
    assert (len(train), len(test)) == (56, 42)
    assert {c.epochs.shape for c in train + test} == {(1, 14, 128)}  # header says 127
    assert {c.labels[0] for c in train} == {"0", "1"}
    assert train[0].sfreq == 1.0


def test_toy_file_values(tmp_path):
    cases = read_uea_ts(write(tmp_path, HEADER + GOOD_ROWS), split="train")
    np.testing.assert_array_equal(cases[1].epochs[0], [[7, 8, 9], [1, 2, 3]])
    assert cases[0].epochs.dtype == np.float32
    assert [c.labels[0] for c in cases] == ["a", "b"]


def test_unlabelled_test_file_is_allowed(tmp_path):
    text = HEADER.replace("@classLabel true a b", "@classLabel false") + "1,2:3,4\n"
    cases = read_uea_ts(write(tmp_path, text, "Toy_TEST.ts"), split="test")
    assert cases[0].labels is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        (HEADER.replace("@data\n", ""), "no @data line"),
        (HEADER, "no cases after @data"),
        (HEADER + "1,2,3:4,5,6:7,8,9:a\n", "line 7 has 3 dimensions, the header/first case 2"),
        (
            HEADER.replace("@classLabel true a b", "@classLabel false") + "1,2:3,4\n",
            "training needs labels",
        ),
        (HEADER + "1,2,3:4,5,6:c\n", r"label 'c' is not among @classLabel \['a', 'b'\]"),
        (HEADER + "1,2,3:4,5:a\n", "its dimensions have different lengths"),
        (
            HEADER.replace("@classLabel true a b", "@classLabel") + GOOD_ROWS,
            "@classLabel has no value",
        ),
        (HEADER + "1,?,3:4,5,6:a\n", "missing values"),
        (HEADER.replace("@dimensions 2", "@dimensions two") + GOOD_ROWS, "not an integer"),
        (HEADER.replace("@classLabel true a b\n", "") + GOOD_ROWS, "no @classLabel header"),
        ("1,2,3:a\n" + HEADER, "line 1 is data before the @data line"),
    ],
)
def test_malformed_files(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(InputDataError, match=message) as error:
        read_uea_ts(path, split="train")
    assert str(path) in str(error.value) and "Fix:" in str(error.value)
    assert "\n" not in str(error.value)


UNEQUAL = HEADER.replace("@equalLength true", "@equalLength false")


def unequal_pair(tmp_path):
    """Train cases of 4, 6 and 8 points; test cases of 5 and 10 points (2 dimensions each)."""

    def case(n, label, offset=0.0):
        dim = ",".join(str(offset + v) for v in range(n))
        return f"{dim}:{dim}:{label}\n"

    train = write(tmp_path, UNEQUAL + case(4, "a") + case(6, "b") + case(8, "a"), "Toy_TRAIN.ts")
    test = write(tmp_path, UNEQUAL + case(5, "a") + case(10, "b"), "Toy_TEST.ts")
    return train, test


@pytest.mark.parametrize(
    ("policy", "length", "said"),
    [("resample", 6, "resampled"), ("pad", 8, "padded with zeros"), ("truncate", 4, "cut")],
)
def test_unequal_length_cases_take_the_training_length(tmp_path, caplog, policy, length, said):
    train_path, test_path = unequal_pair(tmp_path)
    with caplog.at_level("INFO", logger="epochstack.io.uea"):
        cases = read_uea_pair(train_path, test_path, unequal_length=policy)
    assert [c.epochs.shape for c in cases] == [(1, 2, length)] * 5
    assert [c.source_split for c in cases] == ["train"] * 3 + ["test"] * 2
    first = cases[0].epochs[0, 0]  # the 4-point train case 0, 1, 2, 3
    if policy == "resample":
        np.testing.assert_allclose(first, np.linspace(0, 3, 6), rtol=1e-6)
    elif policy == "pad":
        np.testing.assert_array_equal(first, [0, 1, 2, 3, 0, 0, 0, 0])
        np.testing.assert_array_equal(
            cases[4].epochs[0, 0], np.arange(8)
        )  # a longer test case is cut
    else:
        np.testing.assert_array_equal(cases[2].epochs[0, 0], [0, 1, 2, 3])
    said_train = [r.getMessage() for r in caplog.records if "Toy_TRAIN.ts" in r.getMessage()]
    assert said_train and f"{said} to {length} points" in said_train[0]
    assert f"unequal_length={policy}" in said_train[0]
    assert any("Toy_TEST.ts" in r.getMessage() for r in caplog.records)  # the test file is told too


def test_pad_warns_about_test_cases_longer_than_the_training_length(tmp_path, caplog):
    train_path, test_path = unequal_pair(tmp_path)
    with caplog.at_level("WARNING", logger="epochstack.io.uea"):
        read_uea_pair(train_path, test_path, unequal_length="pad")
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert (
        f"{test_path}: 1 test case(s) longer than the training length 8 were cut to it." in warned
    )
    # what was changed, file by file, is a warning too (not an INFO line a user never sees)
    assert any(
        m.startswith(f"{train_path}: 2 of 3 train cases (4..8 points) padded") for m in warned
    )


def test_unequal_length_error_names_the_file_and_the_parameter(tmp_path):
    train_path, test_path = unequal_pair(tmp_path)
    with pytest.raises(
        InputDataError,
        match=r"Toy_TRAIN.ts: cases of unequal length \(4..8 points; e.g. case 1 has 4\).*dataset.uea.unequal_length",
    ):
        read_uea_pair(train_path, test_path, unequal_length="error")
    equal = write(tmp_path, HEADER + GOOD_ROWS, "Eq_TRAIN.ts")
    with pytest.raises(InputDataError, match=r"Toy_TEST.ts: .*the training cases have 3"):
        read_uea_pair(equal, test_path, unequal_length="error")


def test_train_and_test_files_of_one_stem_keep_every_case(tmp_path):
    (tmp_path / "tr").mkdir(), (tmp_path / "te").mkdir()
    train = write(tmp_path / "tr", HEADER + GOOD_ROWS, "Toy.ts")
    test = write(tmp_path / "te", HEADER + GOOD_ROWS + GOOD_ROWS, "Toy.ts")
    ids = [c.recording_id for c in read_uea_pair(train, test)]
    assert ids == ["Toy_train_00000", "Toy_train_00001"] + [f"Toy_test_{i:05d}" for i in range(4)]


def test_the_same_file_as_train_and_test_is_refused(tmp_path):
    path = write(tmp_path, HEADER + GOOD_ROWS)
    with pytest.raises(
        InputDataError, match=r"dataset.test_path: is the same file as dataset.train_path"
    ):
        read_uea_pair(path, tmp_path / "." / path.name)


def test_channels_pick_dimensions_by_name(tmp_path):
    path = write(tmp_path, HEADER + GOOD_ROWS)
    cases = read_uea_ts(path, split="train", channels=["dim_1"])
    assert cases[1].channel_names == ["dim_1"]
    np.testing.assert_array_equal(cases[1].epochs[0], [[1, 2, 3]])
    with pytest.raises(
        InputDataError,
        match=r"Toy_TRAIN.ts: channel\(s\) \['EEG'\] not found; available: \['dim_0', 'dim_1'\]",
    ):
        read_uea_ts(path, split="train", channels=["EEG"])


def test_the_pipeline_reads_unequal_length_files_with_the_configured_default(tmp_path):
    """conf/base's dataset.uea.unequal_length reaches the reader: every epoch has the median length."""
    import yaml

    from epochstack.pipelines.data_engineering.nodes import epoch_recordings, ingest_recordings

    conf = yaml.safe_load(
        (
            Path(__file__).resolve().parents[2] / "conf/base/parameters_data_engineering.yml"
        ).read_text()
    )
    assert conf["dataset"]["uea"]["unequal_length"] == "resample"
    train_path, test_path = unequal_pair(tmp_path)
    dataset = {
        **conf["dataset"],
        "format": "uea_ts",
        "train_path": str(train_path),
        "test_path": str(test_path),
    }
    staged, table, _, _ = epoch_recordings(
        ingest_recordings(dataset), dataset, conf["preprocessing"], {"n_workers": 1}, str(tmp_path)
    )
    assert staged.open().n_times == 6
    assert list(table["source_split"]) == [
        "test",
        "test",
        "train",
        "train",
        "train",
    ]  # sorted by id
    assert list(table["label"]) == ["a", "b", "a", "b", "a"]


def test_tab_separated_header_percent_comments_and_a_utf8_bom_are_read(tmp_path):
    header = "\ufeff% ARFF-style comment\n" + HEADER.replace(" ", "\t")
    cases = read_uea_ts(write(tmp_path, header + GOOD_ROWS), split="train")
    assert [c.labels[0] for c in cases] == ["a", "b"]


def test_binary_and_regression_files_are_named(tmp_path):
    binary = write(tmp_path, "", "Blob_TRAIN.ts")
    binary.write_bytes(b"@problemName x\n\x00\x01\x02")
    with pytest.raises(InputDataError, match=r"Blob_TRAIN\.ts: is a binary file, not a \.ts text"):
        read_uea_ts(binary, split="train")
    regression = HEADER.replace("@classLabel true a b", "@targetLabel true")
    with pytest.raises(InputDataError, match=r"@targetLabel true: a regression problem"):
        read_uea_ts(write(tmp_path, regression + "1,2:3,4:0.5\n"), split="train")


def test_one_stem_for_train_and_test_and_repeated_cases_are_warned_about(tmp_path, caplog):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    train = write(tmp_path / "a", HEADER + GOOD_ROWS, "Blink.ts")
    test = write(tmp_path / "b", HEADER + "1,2,3:4,5,6:a\n0,0,0:1,1,1:b\n", "Blink.ts")
    with caplog.at_level("WARNING", logger="epochstack.io.uea"):
        cases = read_uea_pair(train, test)
    assert [c.recording_id for c in cases] == [
        "Blink_train_00000",
        "Blink_train_00001",
        "Blink_test_00000",
        "Blink_test_00001",
    ]
    said = [r.getMessage() for r in caplog.records]
    assert any("have the same stem 'Blink'" in m for m in said)
    assert f"{test}: 1 of 2 test cases are identical to training cases of {train}" in said[-1]
