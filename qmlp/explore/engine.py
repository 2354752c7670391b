"""Ray, the engine of a sweep: start or join a cluster, submit tasks with resource requests,
collect them as they finish. Ray schedules; qmlp only asks and waits.

* No address: a local Ray started for this command (``num_cpus`` = ``--cpus`` or the machine's
  cores, a small object store, no dashboard), shut down when the command ends.
* ``--address auto`` or ``ray://HOST:PORT``: an existing cluster (``ray start --head`` on one
  machine, ``ray start --address HEAD:6379`` on the others). The qmlp package is shipped to the
  nodes with the job (Ray ``runtime_env`` ``py_modules``); its dependencies must be installed there.
"""

from __future__ import annotations

import logging
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

from ..errors import ConfigError, ToolError

__all__ = ["Cluster", "ray_cluster", "submit", "as_completed", "capacity", "LOCAL_OBJECT_STORE_MB"]

LOCAL_OBJECT_STORE_MB = 256  # results are rows and small files: keep Ray's shared memory small
T = TypeVar("T")


@dataclass(frozen=True)
class Cluster:
    address: str  # "local" or what --address said
    cpus: float
    memory_gb: float
    nodes: int

    def describe(self) -> str:
        return f"Ray {self.address}: {self.nodes} node(s), {self.cpus:g} CPUs, {self.memory_gb:.1f} GB for tasks"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ToolError("qmlp explore needs Ray: pip install ray==2.60.0 (see requirements.txt)") from None
    return ray


@contextmanager
def ray_cluster(address: str | None, cpus: int | None) -> Iterator[Cluster]:
    """Connect to Ray for the duration of the block (and stop a Ray this call started).

    An already initialised Ray (a Python caller's own, or a test's) is used as it is."""
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.ERROR, "configure_logging": True}
        if address is None:
            if cpus is not None and cpus < 1:
                raise ConfigError(f"--cpus {cpus}: give at least 1")
            ray.init(num_cpus=cpus or os.cpu_count() or 1, object_store_memory=LOCAL_OBJECT_STORE_MB << 20, **common)
        else:
            if cpus is not None:
                raise ConfigError("--cpus applies to the local Ray only; an existing cluster has its own CPUs")
            import qmlp
            try:
                ray.init(address=address, runtime_env={"py_modules": [str(Path(qmlp.__file__).parent)]}, **common)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise ConfigError(f"--address {address}: cannot connect to Ray ({' '.join(str(error).split())[:200]}); "
                                  "start it with 'ray start --head' or check HOST:PORT") from None
        started = True
    try:
        resources = ray.cluster_resources()
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        yield Cluster(address=address or "local", cpus=float(resources.get("CPU", 0)),
                      memory_gb=float(resources.get("memory", 0)) / 2**30, nodes=nodes)
    finally:
        if started:
            ray.shutdown()


def submit(fn: Callable[..., Any], *args: Any, cpus: float, memory_gb: float) -> Any:
    """Start ``fn(*args)`` as a Ray task asking for ``cpus`` CPUs and ``memory_gb`` of memory.
    No retries: a trial that kills its worker is recorded as failed, not run again."""
    ray = _import_ray()
    return ray.remote(fn).options(num_cpus=cpus, memory=int(memory_gb * 2**30), max_retries=0).remote(*args)


def as_completed(tasks: Mapping[Any, T], *, tick: Callable[[int], None] = lambda pending: None,
                 poll_s: float = 1.0) -> Iterator[tuple[T, Any, int]]:
    """Yield ``(item, result, still pending)`` for each task as it finishes (``result`` is the Ray
    error when the task or its worker died); ``tick(pending)`` runs about every ``poll_s``.
    Closing the generator early (an exception, Ctrl-C) cancels the tasks still pending."""
    ray = _import_ray()
    from ray.exceptions import RayError

    pending = dict(tasks)
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=poll_s)
            for ref in done:
                item = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except RayError as error:
                    result = error
                yield item, result, len(pending)
            tick(len(pending))
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def capacity(cluster: Cluster, cpus_per_task: float) -> int:
    """How many tasks of ``cpus_per_task`` run at once (the rest wait in Ray's queue)."""
    return max(1, math.floor(cluster.cpus / cpus_per_task + 1e-9))
