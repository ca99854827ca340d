"""Run the bugs: each (bug, side) gives a :class:`Row` with the variant's and the lab's value.

Sim rows simulate the scenario (its seed unless given) under the variant and under the lab
(:func:`sim.model.run_simulation`); db rows run a bounded Locust load test of each against
PostgreSQL (:func:`loadtest.session.run_load_test`) and read the value from the history.
Both compute the metric with :func:`chatlab.metrics.compute_metrics`, so a row is judged
the same way on either side.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatlab.bugs.catalog import Bug
from chatlab.metrics import compute_metrics, get_metric


@dataclass(frozen=True)
class Outcome:
    """One run of one side: the metric's value (None: not measurable, no evidence) and its log."""

    value: float | None
    log: Any = None


@dataclass(frozen=True)
class Row:
    bug: Bug
    where: str  # "sim" or "db"
    variant: Outcome
    lab: Outcome

    @staticmethod
    def _holds(value: float | None, limit: float) -> bool | None:
        return None if value is None or not math.isfinite(value) else value <= limit

    @property
    def reproduced(self) -> bool:
        """The variant breaks the bound (an unmeasurable value is no evidence: not reproduced)."""
        return self._holds(self.variant.value, self.bug.limit) is False

    @property
    def absent(self) -> bool:
        """The lab keeps the bound (an unmeasurable value fails, as in ``chatlab gate``)."""
        return self._holds(self.lab.value, self.bug.limit) is True

    @property
    def passed(self) -> bool:
        return self.reproduced and self.absent


def _value(log: Any, key: str) -> float | None:
    value = get_metric(compute_metrics(log), key)
    return None if value is None else float(value)


def run_sim(bug: Bug, seed: int | None = None) -> Row:
    """The bug in the simulation: the variant and the lab on the same users (same seed)."""
    from sim.model import run_simulation
    from sim.scenario import load_scenario

    base = load_scenario(bug.scenario)
    outcomes = []
    for policy, overrides in ((bug.variant, bug.variant_overrides), (bug.lab, bug.lab_overrides)):
        sc = base.with_overrides(overrides) if overrides else base
        log = run_simulation(sc, policy, seed=seed)
        outcomes.append(Outcome(_value(log, bug.metric), log))
    return Row(bug, "sim", *outcomes)


def run_sims(bugs: list[Bug], seed: int | None = None, *, jobs: int | None = None, dask: str | None = None,
             on_done: Callable[[int, Any], None] | None = None) -> list[Row]:
    """:func:`run_sim` for many bugs at once, their simulations on every core (``jobs``) or a Dask
    cluster (:mod:`chatlab.replications`); the same rows as one by one."""
    from chatlab.replications import Replication, run_replications
    from sim.scenario import load_scenario

    reps = []
    for bug in bugs:
        base = load_scenario(bug.scenario)
        for policy, overrides in ((bug.variant, bug.variant_overrides), (bug.lab, bug.lab_overrides)):
            sc = base.with_overrides(overrides) if overrides else base
            reps.append(Replication(sc, policy, seed, f"{bug.key}:{policy}"))
    runs = run_replications(reps, jobs=jobs, dask=dask, on_done=on_done)
    rows = []
    for k, bug in enumerate(bugs):
        sides = []
        for run in runs[2 * k: 2 * k + 2]:
            value = get_metric(run.metrics, bug.metric)
            sides.append(Outcome(None if value is None else float(value), run.log))
        rows.append(Row(bug, "sim", *sides))
    return rows


def _db_side(bug: Bug, side: str, out_dir: Path, *, seed: int | None, database_url: str | None) -> Outcome:
    """One side (``variant`` or ``lab``) of a bug on PostgreSQL: one bounded load test."""
    from loadtest.session import run_load_test
    from loadtest.settings import plan
    from sim.scenario import load_scenario

    policy, overrides = (bug.variant, bug.variant_overrides) if side == "variant" else (bug.lab, bug.lab_overrides)
    window = float(bug.db_duration or load_scenario(bug.scenario).duration)
    settings = plan(bug.scenario, policy=policy, time_scale=bug.db_time_scale,
                    run_time_s=max(1.0, window / bug.db_time_scale), seed=seed,
                    out_dir=Path(out_dir) / f"{bug.key}-{side}", database_url=database_url,
                    overrides=dict(overrides))
    outcome = run_load_test(settings)
    return Outcome(_value(outcome.log, bug.metric), outcome.log)


def db_slots(database_url: str | None, jobs: int) -> int:
    """How many database load tests :func:`run_dbs` runs at once: ``jobs``, or 1 on a named server."""
    from chatlab.db.server import URL_ENV

    return 1 if database_url or os.environ.get(URL_ENV) else max(1, jobs)


def run_dbs(bugs: list[Bug], out_dir: Path, *, seed: int | None = None, database_url: str | None = None,
            jobs: int = 2, on_done: Callable[[], None] | None = None) -> list[Row]:
    """The bugs on PostgreSQL: a bounded load test of each one's variant and of its lab, ``jobs``
    load tests at once, rows in ``bugs``' order.

    The load tests are wall-clock bound and mostly wait (a few operators, a few chats a
    second), so two at a time nearly halve the suite; every side's bound is a guarantee or a
    bug's signature that does not depend on the machine being idle (a race, an order, a hold).
    Each runs on a temporary server of its own slot (started one after the other: the embedded
    server's start lock is per process); on a named server (``database_url`` or
    ``$DATABASE_URL``) they run one at a time, because each load test sizes its connection pool
    to the server's free connections.  The first failure is raised once the running tests end.
    """
    import queue
    from concurrent.futures import ThreadPoolExecutor
    from contextlib import ExitStack

    from chatlab.db.server import session_database

    sides = [(bug, side) for bug in bugs for side in ("variant", "lab")]
    slots = min(db_slots(database_url, jobs), len(sides))
    servers: queue.Queue[str] = queue.Queue()
    with ExitStack() as stack:
        for _ in range(slots):  # the named server (one slot), else a temporary server per slot
            servers.put(stack.enter_context(session_database(database_url, prefix="chatlab-bugs-pg-")))

        def one(job: tuple[Bug, str]) -> Outcome:
            dsn = servers.get()
            try:
                outcome = _db_side(job[0], job[1], out_dir, seed=seed, database_url=dsn)
            finally:
                servers.put(dsn)
            if on_done is not None:
                on_done()
            return outcome

        with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="chatlab-bugs-db") as pool:
            futures = [pool.submit(one, job) for job in sides]
            try:
                outcomes = [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()  # the ones not started; the running ones end by their own bound
                raise
    return [Row(bug, "db", outcomes[2 * k], outcomes[2 * k + 1]) for k, bug in enumerate(bugs)]
