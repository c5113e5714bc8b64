import pandas as pd
import pytest

from epochstack.errors import InputDataError
from epochstack.io.labels import (
    check_annotation_rows,
    is_stage_annotation,
    normalise_stage,
    unknown_stage_names,
)


@pytest.mark.parametrize(
    ("name", "stage"),
    [
        ("Sleep stage W", "W"),
        ("Sleep stage 1", "N1"),
        ("2", "N2"),
        ("Sleep stage 3", "N3"),
        ("Sleep stage 4", "N3"),
        ("Sleep stage R", "REM"),
        ("REM", "REM"),
        ("Wake", "W"),
        ("N1", "N1"),
        ("NREM", "NREM"),
        ("SWS", "NREM"),
        ("Sleep stage ?", None),
        ("Movement time", None),
        ("seizure", None),
    ],
)
def test_normalise_stage(name, stage):
    assert normalise_stage(name) == stage


def test_stage_annotations_are_told_apart_from_events():
    assert is_stage_annotation("Sleep stage ?")
    assert is_stage_annotation("Movement time")
    assert is_stage_annotation("N2")
    assert not is_stage_annotation("seizure")
    assert not is_stage_annotation("arousal")


def stage_rows(rows):
    return pd.DataFrame(rows, columns=["onset_s", "duration_s", "label"])


def test_unknown_stage_names_are_the_ones_neither_stage_nor_unscored():
    assert unknown_stage_names(["W", "Sleep stage ?", "Deep", "N2", "Deep", "Movement time"]) == [
        "Deep"
    ]


def test_annotation_rows_a_hypnogram_cannot_hold():
    check_annotation_rows(stage_rows([(0, 30, "W"), (30, 30, "N2"), (60.0004, 30, "N2")]), "ok.csv")
    with pytest.raises(
        InputDataError,
        match=r"h.csv: 2 hypnogram rows?\(s\) with a negative or missing onset/duration \(rows 2, 3\)",
    ):
        check_annotation_rows(
            stage_rows([(0, 30, "W"), (30, -30, "N2"), (float("nan"), 30, "W")]), "h.csv"
        )
    # overlaps are reported in time order, with the rows' own numbers
    with pytest.raises(
        InputDataError, match=r"h.csv: 1 overlapping hypnogram stage\(s\) \(lines 3/2\)"
    ):
        check_annotation_rows(
            stage_rows([(90, 30, "W"), (40, 30, "N2"), (0, 60, "W")]),
            "h.csv",
            first_row=1,
            row_name="line",
        )
    # events may overlap
    check_annotation_rows(
        stage_rows([(0, 60, "seizure"), (30, 30, "arousal")]),
        "e.csv",
        what="event",
        may_overlap=True,
    )
