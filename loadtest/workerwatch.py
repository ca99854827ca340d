"""The master's watch over its workers: which went missing mid-run, and when (distributed mode).

Why: Locust's master marks a worker *missing* after ~3 s without a heartbeat (a killed
process, a lost machine) and, started with ``--enable-rebalancing`` (``loadtest/session.py``
passes it), hands that worker's users to the ones left; when the last one goes missing it
stops the test itself.  Our users survive a handover by design: each ``Operator`` and the
``Housekeeper`` claim their identity with a session advisory lock, which the server drops
when the dead worker's connections close, so the respawned users claim exactly what was
lost.  What cannot be handed over is the dead worker's *share of the arrivals* and its
users' conversations in flight; so the run is not the scenario any more.  This module
records the loss (``workers_lost`` in the master's run info; a worker whose heartbeats come
back, e.g. after a CPU stall, is marked ``healed_at`` and not counted) for the session,
which notes it in the report and makes ``chatlab loadtest`` exit 1.
"""

from __future__ import annotations

from typing import Any

import gevent
from locust.runners import STATE_MISSING

#: Wall seconds between two looks at the master's worker table.
WATCH_INTERVAL_S = 0.5


def watch(environment: Any, run: Any) -> Any:
    """Start the watcher greenlet on the master; ``run.workers_lost`` collects the losses."""
    def loop() -> None:
        while not run.stopping:
            gevent.sleep(WATCH_INTERVAL_S)
            sweep(environment, run)

    return gevent.spawn(loop)


def sweep(environment: Any, run: Any) -> None:
    """One look: record newly missing workers, mark recorded ones whose heartbeats came back.
    Also called once more when the master quits (the last loss may stop the test first)."""
    runner = environment.runner
    clients = getattr(runner, "clients", None)
    if clients is None:
        return
    seen = {entry["node_id"] for entry in run.workers_lost}
    for node in list(clients.missing):
        if node.id not in seen:
            run.workers_lost.append({"worker_index": runner.get_worker_index(node.id), "node_id": node.id,
                                     "scenario_time": round(run.clock.now(), 1)})
    for entry in run.workers_lost:
        node = clients.get(entry["node_id"])
        if node is not None and node.state != STATE_MISSING and "healed_at" not in entry:
            entry["healed_at"] = round(run.clock.now(), 1)
