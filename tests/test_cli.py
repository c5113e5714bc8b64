"""`kedro run --params` as the docs write it: lists and quoted commas included."""

import click
import pytest

from epochstack.cli import cli, split_params

PARAMS = click.Option(["--params"])


def test_lists_and_quoted_commas_stay_whole():
    value = "dataset.train_path=/d/A_TRAIN.ts,stacking.enabled=[logreg,quant],x.y='a,b',n=3"
    assert split_params(None, PARAMS, value) == {
        "dataset": {"train_path": "/d/A_TRAIN.ts"},
        "stacking": {"enabled": ["logreg", "quant"]},
        "x": {"y": "a,b"},
        "n": 3,
    }


def test_an_item_without_a_value_is_refused_naming_it():
    with pytest.raises(click.BadParameter, match="'tangent_space' must be key=value"):
        split_params(None, PARAMS, "stacking.enabled=logreg,tangent_space")


def test_the_project_run_command_uses_it():
    run = cli.commands["run"]
    (params,) = [option for option in run.params if option.name == "params"]
    assert params.callback is split_params
