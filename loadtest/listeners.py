"""The load test's Locust event listeners: configuration in, scenario t = 0, arrivals out, run info.

* ``init`` — read the settings (``$CHATLAB_LOADTEST_CONFIG``), build this process's
  :class:`~loadtest.runtime.Runtime`, size the fixed user classes.  A distributed worker
  started without the variable gets the settings from the master with its first spawn
  message (the master puts them in the hidden ``--chatlab-config`` option, which Locust
  forwards to every worker);
* ``test_start`` — scenario t = 0: start the clock, record the database's time of it, and
  release this process's share of the arrivals at their instants;
* ``test_stopping`` / ``quitting`` — stop the flows' loops; write the run info
  (``locust_run_info.json``: the start time and counters the session needs, and the
  exceptions users raised, which fail the run: ``loadtest/usererrors.py``).

With ``--web``, ``init`` also adds the lab's live tabs to Locust's web UI (``loadtest/webui.py``).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np
from locust import events

from chatlab.db.client import ChatDB
from loadtest import usererrors, webui, workerwatch
from loadtest.runtime import Runtime, install, installed
from loadtest.settings import CONFIG_ENV, BadLoadTestConfig, LoadTestSettings
from loadtest.users.housekeeper import Housekeeper
from loadtest.users.operator import Operator
from sim.population import Arrival, Population, share

#: Set by the locustfile: the psycopg wait function it checked (written to the run info).
WAIT_FUNCTION = {"name": "?"}
#: The web UI's live numbers of this process (None without --web, and on workers).
LIVE: dict[str, webui.LiveNumbers | None] = {"numbers": None}


def _role(environment: Any) -> str:
    return type(getattr(environment, "runner", None)).__name__


def _worker_index(environment: Any) -> int:
    return max(0, int(getattr(environment.runner, "worker_index", 0) or 0))


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    # Not for people: the master puts the run's settings here and Locust forwards them to
    # every worker, so a worker needs nothing but the code and the master's address.
    parser.add_argument("--chatlab-config", default="", include_in_web_ui=False,
                        help="(set by the master) the load test's settings as JSON")


def _install(settings: LoadTestSettings, environment: Any) -> Runtime:
    run = Runtime.build(settings, _worker_index(environment) if environment.runner is not None else 0)
    install(run)
    Operator.fixed_count = len(settings.operators)
    Housekeeper.fixed_count = 1
    return run


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    if not os.environ.get(CONFIG_ENV) and _role(environment) == "WorkerRunner":
        return  # the master's settings come with the spawn message
    settings = LoadTestSettings.from_env()
    if environment.parsed_options is not None:
        environment.parsed_options.chatlab_config = settings.to_json()
    LIVE["numbers"] = webui.install(environment, _install(settings, environment))


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    """Scenario t = 0.  The master of a distributed run only records the time (it runs no users)."""
    if environment.runner is None:
        return
    run = installed()
    if run is None:  # a worker: the master's settings came with the spawn message
        text = getattr(environment.parsed_options, "chatlab_config", "") if environment.parsed_options else ""
        if not text:
            raise BadLoadTestConfig(f"no load-test configuration: set ${CONFIG_ENV} or start this worker "
                                    "against a master run by 'chatlab loadtest --expect-workers N'")
        run = _install(LoadTestSettings.from_dict(json.loads(text)), environment)
    run.worker_index = _worker_index(environment)  # known by now
    run.clock.reset()
    with ChatDB(run.settings.dsn, run.settings.schema, application_name="chatlab-loadtest-start") as db:
        run.started_at_db = db.server_clock().isoformat()
    if _role(environment) != "MasterRunner":
        mine = share(Population(run.scenario, run.settings.seed).arrivals(run.settings.duration),
                     run.settings.workers, run.worker_index)
        run.count("arrivals_scheduled", len(mine))
        import gevent

        run.feeder = gevent.spawn(_feed_arrivals, run, mine, environment)
    else:
        workerwatch.watch(environment, run)  # a worker lost mid-run is recorded, not ignored
    _write_run_info(run, environment)


def _feed_arrivals(run: Runtime, arrivals: list[Arrival], environment: Any) -> None:
    """Release each arrival at its instant; RealUsers take them from the queue in order.
    Dying silently would starve the run of users: an exception here fails it as a user's does."""
    try:
        usererrors.inject_fault("feeder")  # tests only ($CHATLAB_LOADTEST_FAULT)
        for arrival in arrivals:
            run.clock.sleep_until(arrival.time)
            if run.stopping:
                return
            run.arrivals.put(arrival)
    except Exception as exc:  # noqa: BLE001 - reported, then the run fails (loadtest/usererrors.py)
        usererrors.report(environment, None, exc)


@events.test_stopping.add_listener
def _on_test_stopping(**_: Any) -> None:
    run = installed()
    if run is not None:
        run.stopping = True


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    run = installed()
    errors = usererrors.on_quitting(environment)  # a user's exception: Locust exits USER_ERROR_EXIT
    if LIVE["numbers"] is not None:
        LIVE["numbers"].close()
    if run is not None:
        run.stopping = True
        if _role(environment) == "MasterRunner":
            workerwatch.sweep(environment, run)  # the last loss may have stopped the test before a look
        _write_run_info(run, environment, errors)


def _write_run_info(run: Runtime, environment: Any, extra: dict[str, Any] | None = None) -> None:
    """Start time and counters for the session (``locust_run_info.json``; workers add ``.workerN``)."""
    path = run.settings.run_info_path
    if run.started_at_db is None:
        return
    if _role(environment) == "WorkerRunner":
        path = f"{path}.worker{run.worker_index}"
    late = np.array(run.lateness) if run.lateness else np.zeros(0)
    info = {
        "started_at_db": run.started_at_db,
        "role": _role(environment),
        "pid": os.getpid(),  # which process is which worker (e.g. to find one that died)
        "time_scale": run.settings.time_scale,
        "scenario_duration": run.settings.duration,
        "wait_function": WAIT_FUNCTION["name"],
        "counters": run.counters,
        "arrivals_waiting": run.arrivals.qsize(),
        "arrival_lateness_p50_s": float(np.percentile(late, 50)) if late.size else None,
        "arrival_lateness_max_s": float(late.max()) if late.size else None,
        "written_at": time.time(),
        **({"workers_lost": run.workers_lost} if _role(environment) == "MasterRunner" else {}),
        **(extra or {}),
    }
    try:
        with open(path, "w") as fh:
            json.dump(info, fh, indent=2)
    except OSError:
        pass  # a remote worker without the master's directory: its counters are in its log only
