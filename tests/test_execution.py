import pytest

from epochstack.errors import InputDataError
from epochstack.execution import Executor


def _square(x):
    return x * x


def _refuse(x):
    if x == 3:
        raise InputDataError(f"rec_{x}.edf", "is broken.", "replace it.")
    return x


@pytest.mark.parametrize("n_workers", [1, 2])
def test_local_map_keeps_input_order(n_workers):
    assert Executor("local", None, n_workers).map(_square, range(7)) == [x * x for x in range(7)]


def test_local_map_reraises_the_task_error_with_its_message():
    with pytest.raises(InputDataError, match=r"rec_3\.edf: is broken\. Fix: replace it\."):
        Executor("local", None, 2).map(_refuse, range(5))


def test_dask_local_cluster_gives_the_local_results_and_errors():
    dask = Executor("dask", None, 2)
    assert dask.map(_square, range(7)) == Executor().map(_square, range(7))
    assert dask.workers == 2
    with pytest.raises(InputDataError, match=r"rec_3\.edf"):
        dask.map(_refuse, range(5))


def test_from_params():
    assert Executor.from_params(
        {"backend": "dask", "address": "tcp://h:8786", "n_workers": 4}
    ) == Executor("dask", "tcp://h:8786", 4)
    assert Executor.from_params(None) == Executor()
