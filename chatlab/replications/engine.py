"""Replications on every core, or on a Dask cluster: the same runs, the same results, whatever runs them.

Why here and not in each command: ``run --seeds``, ``compare``, ``sweep``, ``gate``,
``calibrate --report`` and ``bugs`` all run lists of independent (scenario, policy, seed)
simulations and analyse each; one engine runs them in worker processes
(:class:`concurrent.futures.ProcessPoolExecutor`, ``--jobs N``, default every core) or on a
``dask.distributed`` cluster (``--dask ADDRESS``; the field's engine for going beyond one
machine).  A replication is a pure function of its inputs (the model is seeded), and the
results come back in the order asked, so the numbers — and every report built from them —
are identical for any ``--jobs`` and on any cluster.

Dask workers need this project importable (a checkout with ``pip install -e .``); the
scenario travels with each task (frozen dataclasses pickle), so a worker needs no scenario
files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sim.errors import ChatLabError


class ReplicationError(ChatLabError):
    """Bad --jobs / --dask, or a cluster that cannot be reached."""


@dataclass(frozen=True)
class Replication:
    """One simulation to run and analyse."""

    scenario: Any  # sim.scenario.Scenario
    policy: str | None
    seed: int | None
    label: str
    service_level_t: float = 60.0
    stuck_after: float | None = None
    policy_params: dict[str, float] | None = field(default=None)
    keep_log: bool = True  # False: drop the event log from the result (large floors, many seeds)


def run_one(rep: Replication):  # noqa: ANN201 - chatlab.metrics.Analysis
    """Simulate and analyse one replication (what every worker runs)."""
    from chatlab.metrics import analyse
    from sim.model import run_simulation

    log = run_simulation(rep.scenario, rep.policy, seed=rep.seed, policy_params=rep.policy_params)
    run = analyse(log, label=rep.label, service_level_t=rep.service_level_t, stuck_after=rep.stuck_after)
    if not rep.keep_log:  # only the numbers travel back (a sweep of large floors)
        import dataclasses

        run = dataclasses.replace(run, log=log.iloc[0:0])
    return run


def default_jobs() -> int:
    """Every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def check_jobs(jobs: int | None) -> int:
    if jobs is None:
        return default_jobs()
    if not isinstance(jobs, int) or jobs < 1 or jobs > 512:
        raise ReplicationError(f"--jobs: expected a number of worker processes between 1 and 512, got {jobs!r}")
    return jobs


def run_replications(reps: Sequence[Replication], *, jobs: int | None = None, dask: str | None = None,
                     on_done: Callable[[int, Replication], None] | None = None) -> list:
    """Every replication's analysis, in the order given.  ``on_done(i, rep)`` after each finishes
    (in completion order: progress bars)."""
    reps = list(reps)
    if dask is not None:
        return _on_dask(reps, dask, on_done)
    jobs = min(check_jobs(jobs), max(1, len(reps)))
    if jobs == 1:
        out = []
        for i, rep in enumerate(reps):
            out.append(run_one(rep))
            if on_done:
                on_done(i, rep)
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # fork where there is one (no re-import per worker); the tasks carry everything they need
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    results: list[Any] = [None] * len(reps)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(method)) as pool:
        futures = {pool.submit(run_one, rep): i for i, rep in enumerate(reps)}
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()  # a worker's ChatLabError comes back as itself
            if on_done:
                on_done(i, reps[i])
    return results


def _on_dask(reps: list[Replication], address: str, on_done: Callable[[int, Replication], None] | None) -> list:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:  # pragma: no cover - a dependency
        raise ReplicationError("--dask: dask.distributed is not installed") from None
    try:
        client = Client(address, timeout=10)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ReplicationError(f"--dask: cannot reach the scheduler at {address!r} ({exc})") from None
    try:
        futures = client.map(run_one, reps, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(reps)
        for future in as_completed(futures):
            i = index[future.key]
            results[i] = future.result()
            if on_done:
                on_done(i, reps[i])
        return results
    finally:
        client.close()
