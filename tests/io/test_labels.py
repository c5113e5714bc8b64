import pytest

from epochstack.io.labels import is_stage_annotation, normalise_stage


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
