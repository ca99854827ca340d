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
from loadtest.settings import CONFIG_ENV, START_WAIT_S, BadLoadTestConfig, LoadTestSettings
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
    """Prepare scenario t = 0.  The master of a distributed run only records the time (it runs no users)."""
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
    if run.notify and _role(environment) != "MasterRunner" and run.wakes is None:  # once: the web UI may start again
        from loadtest.wakes import Wakes

        run.wakes = Wakes(run.settings.dsn, run.settings.schema)
        run.wakes.start()
    import gevent

    gevent.spawn(_start_clock, run, environment)


def _start_clock(run: Runtime, environment: Any) -> None:
    """Scenario t = 0, once this process's operators are in.

    Locust spawns its users over a few hundred wall milliseconds (seconds of scenario time at
    K = 60); the model's operators are all there at t = 0.  So the clock starts only when every
    operator of this process has claimed its seat and, if its shift starts at 0, logged in (each
    does that in ``on_start``, before t = 0: the history's log-in is clipped to 0).  The one
    process of a local run knows how many there are; a distributed worker cannot (Locust splits
    them), so it starts at once as before, and so does a run that waits longer than
    :data:`START_WAIT_S`.  The shape measures the run time from this t = 0.
    """
    import gevent

    try:
        expected = len(run.settings.operators) if _role(environment) == "LocalRunner" else 0
        deadline = time.monotonic() + START_WAIT_S
        while run.operators_ready < expected and time.monotonic() < deadline and not run.stopping:
            gevent.sleep(0.005)
        run.count("start_wait_wall_s", START_WAIT_S - max(0.0, deadline - time.monotonic()))
        run.clock.reset()
        with ChatDB(run.settings.dsn, run.settings.schema, application_name="chatlab-loadtest-start") as db:
            run.origin = db.server_clock()
            run.started_at_db = run.origin.isoformat()
        if run.push and _role(environment) != "WorkerRunner":
            run.dispatcher = gevent.spawn(_dispatch, run, environment)
        if _role(environment) != "MasterRunner":
            mine = share(Population(run.scenario, run.settings.seed).arrivals(run.settings.duration),
                         run.settings.workers, run.worker_index)
            run.count("arrivals_scheduled", len(mine))
            run.feeder = gevent.spawn(_feed_arrivals, run, mine, environment)
        else:
            workerwatch.watch(environment, run)  # a worker lost mid-run is recorded, not ignored
        run.go.set()
        _write_run_info(run, environment)
    except Exception as exc:  # noqa: BLE001 - reported, then the run fails (loadtest/usererrors.py)
        usererrors.report(environment, None, exc)
        run.go.set()


class _Stopping:
    """The dispatcher's stop flag: the run's ``stopping``."""

    def __init__(self, run: Runtime) -> None:
        self.run = run

    def is_set(self) -> bool:
        return self.run.stopping


def _dispatch(run: Runtime, environment: Any) -> None:
    """Push mode: the dispatcher (021), woken by NOTIFY chatlab_work, with a dispatch every
    ``poll_interval`` as the safety net (the model's push ticker); its calls are Locust requests."""
    from chatlab.db.dispatcher import Dispatcher
    from loadtest.reporting import LocustReporter

    pol, wall = run.scenario.policy, run.clock.wall
    routing = pol.routing
    rules = {"fallback_after": wall(pol.fallback_after),
             "relax_after": None if routing.relax_after is None else wall(routing.relax_after),
             "sla_targets": None if routing.sla_targets is None else [wall(t) for t in routing.sla_targets],
             "sticky_for": None if routing.sticky_for is None else wall(routing.sticky_for),
             "fair_limit": routing.fair_limit, "fair_window": wall(routing.fair_window)}
    try:
        dispatcher = Dispatcher(run.settings.dsn, run.settings.schema, run.settings.policy, rules=rules,
                                safety_s=min(3600.0, max(0.01, wall(pol.poll_interval))), salt=run.salt,
                                observer=LocustReporter(environment, {"role": "dispatcher"}))
        dispatcher.db.wake_dispatchers()  # its assignments wake the operators' clients (022)
        dispatcher.run(_Stopping(run))
    except Exception as exc:  # noqa: BLE001 - a dead dispatcher would starve the run: fail it
        usererrors.report(environment, None, exc)
        return
    run.count("dispatcher_assignments", dispatcher.assigned)
    run.count("dispatcher_dispatches", dispatcher.dispatches)
    run.count("dispatcher_wakes", dispatcher.wakes)


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
        if run.dispatcher is not None:
            run.dispatcher.join(timeout=3)  # it sees stopping within half a second and adds its counters
        if run.wakes is not None:
            run.wakes.stop()
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
