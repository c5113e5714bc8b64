"""The one seam for parallel work: per recording (ingest, features, inference) and per fold.

``executor: {backend: local | dask, address: null, n_workers: 2}`` in ``parameters.yml`` picks
where tasks run. ``local`` uses joblib's process pool on this machine; ``dask`` sends them to a
``dask.distributed`` cluster: the scheduler at ``address`` (e.g. one started by dask-jobqueue's
``SLURMCluster``, see docs/scaling.md), else a ``LocalCluster`` of ``n_workers`` processes. Both
return results in input order and re-raise a task's exception with its message intact
(``InputDataError`` pickles). Library code takes an :class:`Executor`; it never starts pools.

Kedro's ``ParallelRunner`` is not used because it skips the hooks that kedro-mlflow needs.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from joblib import Parallel, delayed
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

# A pool worker growing by more than this since its first task is leaking (see _pool_task).
_WORKER_GROWTH_BYTES = int(4e9)
_CLIENTS: dict[tuple[str | None, int], Any] = {}


@dataclass(frozen=True)
class Executor:
    """Where ``map`` runs its tasks (see the module docstring)."""

    backend: Literal["local", "dask"] = "local"
    address: str | None = None
    n_workers: int = 2

    @classmethod
    def from_params(cls, params: dict | Executor | None) -> Executor:
        """An executor from the ``executor`` parameters block (validated by the hooks)."""
        if isinstance(params, Executor):
            return params
        params = dict(params or {})
        return cls(
            str(params.get("backend", "local")),
            params.get("address") or None,
            int(params.get("n_workers", 2)),
        )

    @property
    def workers(self) -> int:
        """Tasks that run at once: the local pool size, or the cluster's worker count."""
        if self.backend == "dask":
            return max(1, len(_client(self).scheduler_info().get("workers", {})))
        return max(1, self.n_workers)

    def workers_here(self, n_tasks: int) -> int:
        """Tasks that run at once on this machine, sharing its memory (a remote cluster's
        workers do not; a ``LocalCluster``'s do)."""
        if self.backend == "dask" and self.address:
            return 1
        return max(1, min(self.n_workers, n_tasks))

    def map(
        self, func: Callable[..., Any], items: Iterable[Any], *, desc: str | None = None
    ) -> list[Any]:
        """``[func(item) for item in items]``, run in parallel, in input order."""
        items = list(items)
        if not items:
            return []
        if self.backend == "dask":
            return _dask_map(_client(self), func, items, desc)
        if self.n_workers <= 1 or len(items) == 1:
            return [
                func(item)
                for item in tqdm(items, desc=desc, disable=_quiet(desc, items), leave=False)
            ]
        tasks = Parallel(n_jobs=self.n_workers, backend="loky", return_as="generator")(
            delayed(_pool_task)(func, item) for item in items
        )
        return list(
            tqdm(tasks, total=len(items), desc=desc, disable=_quiet(desc, items), leave=False)
        )


def _pool_task(func: Callable[..., Any], item: Any) -> Any:
    """``func(item)`` in a pool worker whose memory may grow by more than 300 MB without leaking.

    loky restarts a worker whose memory grew by 300 MB since its first task, warning "A worker
    stopped while some jobs were given to the executor ... memory leak". One pool serves every
    stage of a run, so a worker that epoched a night first and imports torch for a deep-model fold
    later grows by more than that with nothing leaked. That guard (a setting of joblib's loky
    module, read by the worker after each task) is raised here to what a real leak would reach.
    """
    from joblib.externals.loky import process_executor

    process_executor._MAX_MEMORY_LEAK_SIZE = max(
        process_executor._MAX_MEMORY_LEAK_SIZE, _WORKER_GROWTH_BYTES
    )
    return func(item)


def _quiet(desc: str | None, items: Sequence) -> bool | None:
    # tqdm's None disables the bar when the output is not a terminal (logs, CI).
    return True if desc is None or len(items) < 2 else None


def _client(executor: Executor):
    """One client per (address, workers) for the life of the process; closed at exit."""
    key = (executor.address, executor.n_workers)
    client = _CLIENTS.get(key)
    if client is not None and client.status == "running":
        return client
    from distributed import Client, LocalCluster

    if executor.address:
        client = Client(executor.address, timeout=60)
        logger.info(
            "Executor: dask, scheduler %s (%d workers).",
            executor.address,
            len(client.scheduler_info().get("workers", {})),
        )
    else:
        cluster = LocalCluster(
            n_workers=executor.n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        client = Client(cluster)
        logger.info(
            "Executor: dask, LocalCluster at %s (%d worker processes).",
            cluster.scheduler_address,
            executor.n_workers,
        )
    _CLIENTS[key] = client
    return client


def _dask_map(client, func: Callable[..., Any], items: list[Any], desc: str | None) -> list[Any]:
    from distributed import as_completed

    futures = client.map(func, items, pure=False)
    try:
        for future in tqdm(
            as_completed(futures),
            total=len(futures),
            desc=desc,
            disable=_quiet(desc, items),
            leave=False,
        ):
            if future.status == "error":
                future.result()  # re-raises the task's own exception
        return client.gather(futures)
    finally:
        client.cancel(futures)


@atexit.register
def close_clients() -> None:
    """Close the clients (and the LocalClusters) this process started."""
    for client in _CLIENTS.values():
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()
    _CLIENTS.clear()
