"""The parameter schemas: values are checked as the nodes will receive them."""

from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

from epochstack.config import validate_parameters
from epochstack.errors import ParameterError

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.parametrize(
    "env", sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name != "base")
)
def test_every_shipped_environment_passes(env):
    loader = OmegaConfigLoader(str(CONF), base_env="base", default_run_env=env)
    validate_parameters(loader["parameters"])


@pytest.mark.parametrize(
    ("block", "said"),
    [
        (
            {"preprocessing": {"epoch": {"window_s": "30"}}},
            r"window_s: input should be a valid number \(got '30'\)",
        ),
        (
            {"preprocessing": {"notch_hz": float("inf")}},
            r"notch_hz: input should be a finite number",
        ),
        ({"dataset": {"sfreq": float("nan")}}, r"dataset\.sfreq: input should be a finite number"),
        (
            {"preprocessing": {"artefacts": {"exclude": "false"}}},
            r"exclude: input should be a valid boolean",
        ),
        (
            {"preprocessing": {"filters": {"eeg": {"l_freq": 40, "h_freq": 35}}}},
            r"l_freq 40 Hz is not below h_freq 35 Hz",
        ),
        (
            {"preprocessing": {"artefacts": {"extreme_abs": {"eeg": -1}}}},
            r"extreme_abs\.eeg: input should be greater than 0",
        ),
    ],
)
def test_values_nodes_would_misread_are_refused(block, said):
    with pytest.raises(ParameterError, match=said):
        validate_parameters(block)


def test_integers_stand_for_floats():
    validate_parameters(
        {"preprocessing": {"epoch": {"window_s": 30, "step_s": 15}, "resample_hz": 128}}
    )


def test_the_split_methods_the_schema_accepts_are_the_splitters_there_are():
    """The schema cannot import the splitters (config sits below models, and importing it
    from there would make config.py a code dependency of three DVC stages): the two lists are
    kept equal here instead."""
    from typing import get_args

    from epochstack.config import SplitParams
    from epochstack.models.splits import SPLIT_METHODS

    assert set(get_args(SplitParams.model_fields["method"].annotation)) == set(SPLIT_METHODS)
