"""Text tables from users' disks: parser errors become one line naming the file."""

import logging

import pandas as pd
import pytest

from epochstack.errors import InputDataError
from epochstack.io.tables import read_csv_table


def test_a_row_with_more_fields_than_the_header_is_named_by_line(tmp_path):
    path = tmp_path / "signals.csv"
    path.write_text("time,x,label\n0,1,a\n0.1,2,a,extra\n")
    with pytest.raises(
        InputDataError,
        match=r"signals\.csv: cannot be parsed as CSV: line 3 has 4 fields, the header 3",
    ):
        read_csv_table(path)


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "is a PNG image"),
        (b"PK\x03\x04" + bytes(200), r"is a zip archive \(an \.xlsx workbook\?\)"),
        (bytes(range(256)) * 4, "is a binary file"),
    ],
)
def test_binary_files_are_named_as_such(tmp_path, content, said):
    path = tmp_path / "labels.csv"
    path.write_bytes(content)
    with pytest.raises(InputDataError, match=rf"labels\.csv: {said}, not a CSV text file"):
        read_csv_table(path)


def test_windows_1252_is_read_with_a_warning_and_utf8_bom_silently(tmp_path, caplog):
    latin = tmp_path / "latin.csv"
    pd.DataFrame({"recording_id": ["Jürgen"], "x": [1.0]}).to_csv(
        latin, index=False, encoding="cp1252"
    )
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufefftime,x\n0,1\n".encode())
    with caplog.at_level(logging.WARNING):
        assert read_csv_table(latin)["recording_id"].tolist() == ["Jürgen"]
        assert list(read_csv_table(bom).columns) == ["time", "x"]
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"{latin}: not UTF-8; read as Windows-1252")


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(InputDataError, match="nowhere.csv: file not found"):
        read_csv_table(tmp_path / "nowhere.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputDataError, match=r"empty.csv: empty file \(no header line"):
        read_csv_table(tmp_path / "empty.csv", "hypnogram CSV")
