"""The default training run, warnings from epochstack's own code made errors: a deprecated call
(or one whose behaviour a dependency is about to change) fails here, not in a user's console."""

import pytest

from tests.conftest import FAST_STACKING, TINY_SLEEP, deep_merge

pytestmark = pytest.mark.integration


@pytest.mark.filterwarnings("error::FutureWarning:epochstack")
@pytest.mark.filterwarnings("error::DeprecationWarning:epochstack")
@pytest.mark.filterwarnings("error::PendingDeprecationWarning:epochstack")
def test_the_training_run_calls_nothing_deprecated(kedro_project):
    params = deep_merge(TINY_SLEEP, FAST_STACKING)
    params["executor"] = {"n_workers": 1}  # every node's code in this process, under the filters
    kedro_project.run("__default__", params)
    assert (kedro_project.path / "data/08_reporting/metrics.json").exists()
