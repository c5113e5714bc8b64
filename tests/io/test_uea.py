from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from epochstack.errors import InputDataError
from epochstack.io.uea import read_uea_ts

UEA = Path(__file__).resolve().parents[3] / "shared" / "data" / "uea"  # ../shared beside the clone
needs_uea = pytest.mark.skipif(not UEA.is_dir(), reason="UEA sample files not available")

HEADER = "@problemName Toy\n@univariate false\n@dimensions 2\n@equalLength true\n@classLabel true a b\n@data\n"
GOOD_ROWS = "1,2,3:4,5,6:a\n7,8,9:1,2,3:b\n"


def write(tmp_path, text, name="Toy_TRAIN.ts"):
    path = tmp_path / name
    path.write_text(text)
    return path


@needs_uea
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
    assert first.recording_id == first.subject_id == f"BasicMotions_{split.upper()}_00000"
    assert first.source_split == split
    assert first.sfreq == 10.0
    assert first.channel_names == [f"dim_{d}" for d in range(6)]
    assert first.channel_types == ["misc"] * 6
    assert first.epochs.dtype == np.float32


@needs_uea
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
        (HEADER + "1,2,3:4,5:a\n", "unequal length"),
        (
            HEADER.replace("@equalLength true", "@equalLength false") + GOOD_ROWS,
            "@equalLength false",
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
