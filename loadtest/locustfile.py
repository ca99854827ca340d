"""Locust suite: real users, operators and the housekeeping jobs against the real SQL functions.

Run it through ``chatlab loadtest SCENARIO`` (which creates a fresh schema, seeds the
operators and writes the configuration this file reads from ``$CHATLAB_LOADTEST_CONFIG``).

The simulation's model (``sim/model.py``), acted out on the real database on a wall
clock K times faster (``time_scale``):

* **RealUser** — the simulation's own users (same arrival instants, exchanges, patience
  and think times: ``sim/population.py``), released open-loop at their instants; a
  Locust RealUser takes the next one, opens the chat, waits for each answer, thinks,
  writes again, ends the chat ``resolved`` — or ``abandoned`` when, ``patience`` after
  writing, nobody has taken it;
* **Operator** — one seeded operator with the model's two loops: a *worker* answering
  the held chats' messages one at a time (``handle_time``; sometimes a hand-back;
  sometimes first an idle spell without replies or heartbeats, which idle detection must
  catch) and a *poller* (a second greenlet and connection) that asks
  ``assign_chat_to_operator`` whenever a slot is free, then every ``poll_interval``,
  and heartbeats when the operator showed no activity for ``idle_after / 2``;
* **Housekeeper** — idle detection and stuck-chat release on the scenario's intervals.

What the database knows is read from it (``operator_inbox``, ``poll_chat``), never
assumed.  IMPORTANT: ``import locust`` must stay the first import (gevent patches
``select`` there); psycopg imported earlier would block the whole process.
``ensure_cooperative_wait`` fails loudly if that ever happens.
"""

from __future__ import annotations

import locust  # noqa: F401  # must be first: gevent patches select before psycopg is imported
from locust import LoadTestShape, User, constant, events, task
from locust.exception import StopUser

import json
import logging
import math
import os
import time
import zlib
from dataclasses import dataclass
from typing import Any

import gevent
import numpy as np
from gevent.event import Event as Wake
from gevent.queue import Empty, Queue

from loadtest.pgclient import CallFailed, PgClient, ensure_cooperative_wait

WAIT_FUNCTION = ensure_cooperative_wait()  # raises NotCooperative when psycopg would block

from loadtest.chatapi import ChatAPI  # noqa: E402
from loadtest.clock import ScaledClock  # noqa: E402
from loadtest.config import CONFIG_ENV, BadLoadTestConfig, LoadTestConfig, SeededOperator  # noqa: E402
from loadtest.flowparams import FlowParams, from_scenario  # noqa: E402
from loadtest.plan import pool_target  # noqa: E402
from sim.population import Arrival, Population, Streams, share  # noqa: E402

log = logging.getLogger("chatlab.loadtest")

#: advisory-lock key of the housekeeper (operators use their id); the namespace is the
#: run's schema, so two load tests on one server never claim each other's operators
HOUSEKEEPER_LOCK = -1
#: scenario seconds between a client's looks at the database for news it cannot be told
#: about (a user waiting for its answer; a worker whose held chat may get a user message)
CLIENT_POLL = 2.0


@dataclass
class Run:
    """Process-wide state of this Locust process (set up in ``init``/``test_start``)."""

    config: LoadTestConfig
    flows: FlowParams
    scenario: Any
    clock: ScaledClock
    arrivals: Queue
    worker_index: int = 0
    started_at_db: str | None = None
    stopping: bool = False
    feeder: Any = None

    def __post_init__(self) -> None:
        self.counters: dict[str, float] = {}
        self.lateness: list[float] = []
        self._salt_rng: np.random.Generator | None = None

    def count(self, key: str, n: float = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def salt(self) -> int:
        """The random policy's salt: the scenario's fixed one, else a fresh seeded one per request."""
        fixed = self.flows.salt
        if fixed is not None:
            return fixed
        if self._salt_rng is None:  # per worker process, from the simulation's salt stream
            self._salt_rng = Streams(self.config.seed).worker_salt(self.worker_index)
        return int(self._salt_rng.integers(0, 2**31))

    def poll_wall(self, scenario_seconds: float) -> float:
        return max(self.config.min_poll_wall_s, scenario_seconds / self.config.time_scale)

    @property
    def lock_namespace(self) -> int:
        """A signed 32-bit advisory-lock namespace derived from the schema name."""
        value = zlib.crc32(self.config.schema.encode())
        return value - 2**32 if value >= 2**31 else value


RUN: Run | None = None


def _run() -> Run:
    if RUN is None:
        raise StopUser()
    return RUN


# --------------------------------------------------------------------------------------
# set-up and tear-down
# --------------------------------------------------------------------------------------
@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    # Not for people: the master puts the run's configuration here and Locust forwards it to
    # every worker, so a worker needs nothing but the code and the master's address.
    parser.add_argument("--chatlab-config", default="", include_in_web_ui=False,
                        help="(set by the master) the load test's configuration as JSON")


def _build_run(config: LoadTestConfig, environment: Any) -> Run:
    from sim.scenario import load_scenario  # the simulation's loader: same scenario, same validation

    scenario = load_scenario(config.scenario)
    index = max(0, int(getattr(environment.runner, "worker_index", 0) or 0))
    return Run(config=config, flows=from_scenario(scenario), scenario=scenario,
               clock=ScaledClock(config.time_scale), arrivals=Queue(), worker_index=index)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    """Read the run's configuration (``$CHATLAB_LOADTEST_CONFIG``) and size the user classes.

    A distributed worker started without the variable gets the configuration from the
    master with its first spawn message (see :func:`_on_test_start`).
    """
    global RUN
    if not os.environ.get(CONFIG_ENV) and _role(environment) == "WorkerRunner":
        return
    config = LoadTestConfig.from_env()
    if environment.parsed_options is not None:
        environment.parsed_options.chatlab_config = config.to_json()
    RUN = _build_run(config, environment)
    Operator.fixed_count = len(config.operators)
    Housekeeper.fixed_count = 1


def _role(environment: Any) -> str:
    return type(getattr(environment, "runner", None)).__name__


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    """Scenario t = 0: start the clock, record the database's time of it, release arrivals.

    The master of a distributed run only records the time (it runs no users).
    """
    global RUN
    if environment.runner is None:
        return
    if RUN is None:  # a worker: the master's configuration came with the spawn message
        text = getattr(environment.parsed_options, "chatlab_config", "") if environment.parsed_options else ""
        if not text:
            raise BadLoadTestConfig(f"no load-test configuration: set ${CONFIG_ENV} or start this worker "
                                    "against a master run by 'chatlab loadtest --expect-workers N'")
        RUN = _build_run(LoadTestConfig.from_dict(json.loads(text)), environment)
    run = RUN
    run.worker_index = max(0, int(getattr(environment.runner, "worker_index", 0) or 0))  # known by now
    run.clock.reset()
    client = PgClient(run.config.dsn, schema=run.config.schema, application_name="chatlab-loadtest-start")
    try:
        run.started_at_db = client.conn.execute("SELECT clock_timestamp()").fetchone()[0].isoformat()
    finally:
        client.close()
    if _role(environment) != "MasterRunner":
        mine = share(Population(run.scenario, run.config.seed).arrivals(run.config.duration),
                     run.config.workers, run.worker_index)
        run.count("arrivals_scheduled", len(mine))
        run.feeder = gevent.spawn(_feed_arrivals, run, mine)
    _write_run_info(run, environment)


def _feed_arrivals(run: Run, arrivals: list[Arrival]) -> None:
    """Release each arrival at its instant; RealUsers take them from the queue in order."""
    for arrival in arrivals:
        run.clock.sleep_until(arrival.time)
        if run.stopping:
            return
        run.arrivals.put(arrival)


@events.test_stopping.add_listener
def _on_test_stopping(**_: Any) -> None:
    if RUN is not None:
        RUN.stopping = True


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    if RUN is not None:
        RUN.stopping = True
        _write_run_info(RUN, environment)


def _write_run_info(run: Run, environment: Any) -> None:
    """Start time and counters for the runner (``locust_run_info.json``; workers add ``.workerN``)."""
    path = run.config.run_info_path
    if not path or run.started_at_db is None:
        return
    if _role(environment) == "WorkerRunner":
        path = f"{path}.worker{run.worker_index}"
    late = np.array(run.lateness) if run.lateness else np.zeros(0)
    info = {
        "started_at_db": run.started_at_db,
        "role": _role(environment),
        "time_scale": run.config.time_scale,
        "scenario_duration": run.config.duration,
        "wait_function": WAIT_FUNCTION,
        "counters": run.counters,
        "arrivals_waiting": run.arrivals.qsize(),
        "arrival_lateness_p50_s": float(np.percentile(late, 50)) if late.size else None,
        "arrival_lateness_max_s": float(late.max()) if late.size else None,
        "written_at": time.time(),
    }
    try:
        with open(path, "w") as fh:
            json.dump(info, fh, indent=2)
    except OSError:
        pass  # a remote worker without the master's directory: its counters are in its log only


def _client(user: User, role: str) -> PgClient:
    run = _run()
    return PgClient(run.config.dsn, environment=user.environment, schema=run.config.schema,
                    application_name=f"chatlab-{role}", context={"role": role})


# --------------------------------------------------------------------------------------
# real users
# --------------------------------------------------------------------------------------
class RealUser(User):
    """A customer: one conversation at a time, taken from the open-loop arrival stream."""

    wait_time = constant(0)
    weight = 1

    def on_start(self) -> None:
        self.api = ChatAPI(_client(self, "real_user"))

    def on_stop(self) -> None:
        self.api.client.close()

    @task
    def next_conversation(self) -> None:
        run = _run()
        try:
            arrival = run.arrivals.get(timeout=0.5)
        except Empty:
            return
        run.lateness.append(max(0.0, run.clock.now() - arrival.time))
        try:
            self.converse(run, arrival)
        except CallFailed:
            run.count("conversations_failed")  # already a Locust failure; next arrival

    def converse(self, run: Run, arrival: Arrival) -> None:
        """Open the chat; per exchange: wait for the answer, think, write again (or end it)."""
        clock = run.clock
        real_user_id = run.worker_index * 1_000_000_000 + arrival.index + 1
        chat_id = self.api.user_message(real_user_id, f"hello from user {real_user_id}")
        if chat_id is None:
            run.count("open_refused")
            return
        run.count("chats_opened")
        for i in range(arrival.exchanges):
            if not self.wait_for_answer(run, chat_id, arrival.patience):
                return
            clock.sleep(arrival.thinks[i])
            if run.stopping:
                return
            if i == arrival.exchanges - 1:
                if self.api.end_chat(chat_id, "resolved"):
                    run.count("chats_resolved")
                return
            if self.api.user_message(real_user_id, "reply", chat_id) is None:
                run.count("chats_closed_elsewhere")
                return
            run.count("user_messages")

    def wait_for_answer(self, run: Run, chat_id: int, patience: float) -> bool:
        """Poll until an operator answered my last message; False if the chat ended (or I gave up).

        As the model: ``patience`` after writing, and every ``patience`` after that, a chat
        still waiting for an operator is ended ``abandoned``.
        """
        clock = run.clock
        next_check = clock.now() + patience
        poll = run.poll_wall(min(CLIENT_POLL, run.flows.poll_interval))
        while not run.stopping:
            time.sleep(poll)
            status = self.api.chat_status(chat_id)
            if status is None or status[0] == "completed":
                run.count("chats_closed_elsewhere")
                return False
            state, replied_at, asked_at = status
            # an answer = an operator message after my last message (not the state: under the
            # legacy policy a replied chat can be taken again before I look)
            if replied_at is not None and (asked_at is None or replied_at > asked_at):
                return True
            if clock.now() >= next_check:
                if state == "waiting_assignment":
                    if self.api.end_chat(chat_id, "abandoned"):
                        run.count("chats_abandoned")
                    return False
                next_check += patience
        return False


# --------------------------------------------------------------------------------------
# operators
# --------------------------------------------------------------------------------------
class Operator(User):
    """One seeded operator (claimed by an advisory lock, so also unique across workers).

    The Locust task is the operator's *worker*; ``on_start`` spawns its *poller* greenlet
    with its own connection.  They wake each other as the model's loops do (a taken chat
    wakes the worker, a freed slot wakes the poller); anything the database may have
    changed behind their back (idle detection, a user writing to a held chat) they see by
    polling it.
    """

    wait_time = constant(0)
    fixed_count = 1  # set to the number of seeded operators in init

    def on_start(self) -> None:
        run = _run()
        self.api = ChatAPI(_client(self, "operator"))
        self.me = self._claim(run)
        if self.me is None:
            self.api.client.close()
            raise StopUser()
        self.op = self.me.operator_id
        self.rng = Streams(run.config.seed).operators(len(run.config.operators))[self.op - 1]
        self.idle = False
        self.on_shift_db: bool | None = None  # the shift state we last told the database
        self.last_activity = 0.0  # scenario time of our last activity (login, reply, unassign, touch)
        self.work_wake, self.poll_wake = Wake(), Wake()
        self.poll_api = ChatAPI(_client(self, "operator"))
        self.poller = gevent.spawn(self._poller, run)

    def _claim(self, run: Run) -> SeededOperator | None:
        for op in run.config.operators:
            got = self.api.client.query("claim_operator", "SELECT pg_try_advisory_lock(%s, %s)",
                                        (run.lock_namespace, op.operator_id)).value
            if got:
                return op
        return None

    def on_stop(self) -> None:
        poller = getattr(self, "poller", None)
        if poller is not None:
            poller.kill(block=True, timeout=2)
            self.poll_api.client.close()
        self.api.client.close()

    # time and shifts -----------------------------------------------------------------------
    def on_shift(self, now: float) -> bool:
        return not self.me.shifts or any(a <= now < b for a, b in self.me.shifts)

    def next_shift_change(self, now: float) -> float:
        edges = [t for a, b in self.me.shifts for t in (a, b) if t > now]
        return min(edges) if edges else math.inf

    def _sleep(self, run: Run, until: float, wake: Wake | None = None) -> None:
        """Sleep until scenario time ``until`` (or the next shift change, or ``wake`` is set)."""
        clock = run.clock
        now = clock.now()
        until = min(until, self.next_shift_change(now))
        if until <= now:
            time.sleep(run.config.min_poll_wall_s)
            return
        wall = max(run.config.min_poll_wall_s, clock.wall(until - now)) if math.isfinite(until) else None
        if wake is None:
            gevent.sleep(wall if wall is not None else 3600.0)
        else:
            wake.wait(wall)
            wake.clear()

    def _log_in(self, run: Run, api: ChatAPI, online: bool) -> None:
        api.set_operator_online(self.op, online)  # offline releases what it held; online = activity
        self.last_activity = run.clock.now()
        run.count("logins" if online else "logouts")

    # the worker (the Locust task) ----------------------------------------------------------
    @task
    def work(self) -> None:
        run = _run()
        while not run.stopping:
            try:
                self._work_step(run)
            except CallFailed:
                run.count("operator_errors")
                time.sleep(run.poll_wall(run.flows.poll_interval))

    def _work_step(self, run: Run) -> None:
        flows, clock = run.flows, run.clock
        now = clock.now()
        shift = self.on_shift(now)
        if shift != self.on_shift_db:  # a shift starts or ends (the model's shift process)
            if shift and not self.idle:
                self._log_in(run, self.api, True)
            elif not shift and self.on_shift_db:
                self._log_in(run, self.api, False)
            self.on_shift_db = shift
            self.poll_wake.set()
        if not shift:
            self._sleep(run, math.inf)
            return
        pending = self.api.inbox(self.op).pending
        if not pending:
            # nothing to answer: the poller wakes us when it takes a chat; a user writing to
            # a chat we hold (legacy) we only see by looking
            self._sleep(run, now + min(CLIENT_POLL, flows.poll_interval), self.work_wake)
            return
        work = pending[0]
        if flows.idle_probability and self.rng.random() < flows.idle_probability:
            self._idle(run)
            return
        self._sleep(run, now + float(flows.handle_time.sample(self.rng)))
        if run.stopping or not self.on_shift(clock.now()):
            return  # the shift ended meanwhile: logging out released the chat (effort lost)
        if flows.unassign_probability and self.rng.random() < flows.unassign_probability:
            done = self.api.unassign(self.op, work.chat_id)
            run.count("unassigns" if done else "unassign_lost")
        else:  # False: idle detection or a stuck release took it meanwhile (effort lost)
            done = self.api.reply(self.op, work.chat_id, "answer")
            run.count("replies" if done else "reply_lost")
        if done:
            self.last_activity = clock.now()
        self.poll_wake.set()  # a slot is free: the poller asks again

    def _idle(self, run: Run) -> None:
        """Silent for ``idle_duration``: no answers, no heartbeat, no polling."""
        clock = run.clock
        self.idle = True
        run.count("idle_episodes")
        end = clock.now() + float(run.flows.idle_duration.sample(self.rng))
        try:
            while clock.now() < end and not run.stopping:
                self._sleep(run, end)  # a shift change wakes us early: keep being idle
                if self.on_shift_db and not self.on_shift(clock.now()):
                    self._log_in(run, self.api, False)  # the shift ends while away (the model's shift process)
                    self.on_shift_db = False
        finally:
            self.idle = False
        if self.on_shift_db and not run.stopping:
            self._log_in(run, self.api, True)  # a touch if still online, a new login if logged out
        self.poll_wake.set()

    # the poller (a greenlet) -------------------------------------------------------------
    def _poller(self, run: Run) -> None:
        while not run.stopping:
            try:
                self._poll_step(run)
            except CallFailed:
                run.count("poller_errors")
                time.sleep(run.poll_wall(run.flows.poll_interval))
            except gevent.GreenletExit:
                raise
            except Exception:  # never die silently: the operator would stop taking chats
                log.exception("operator %s poller", self.op)
                run.count("poller_crashes")
                time.sleep(run.poll_wall(run.flows.poll_interval))

    def _poll_step(self, run: Run) -> None:
        flows, clock = run.flows, run.clock
        now = clock.now()
        if not self.on_shift(now) or self.idle or self.on_shift_db is None:
            self._sleep(run, now + flows.poll_interval, self.poll_wake)
            return
        beat = flows.idle_after / 4 if flows.idle_detection_interval > 0 else math.inf
        inbox = self.poll_api.inbox(self.op)
        if not inbox.online:  # logged out (idle detection) while away: log back in
            self._log_in(run, self.poll_api, True)
        elif now - self.last_activity >= flows.idle_after / 2:  # heartbeat (the model's rule)
            self.poll_api.touch_operator(self.op)
            self.last_activity = now
        if len(inbox.held) < self.me.max_chats:
            # the SQL compares fallback_after with the database's (wall) clock
            got = self.poll_api.assign(self.op, run.config.policy, clock.wall(flows.fallback_after), run.salt())
            if got is not None:
                run.count("assignments")
                self.work_wake.set()
                return  # ask again at once while a slot is free
            self._sleep(run, now + min(flows.poll_interval, beat), self.poll_wake)
        else:
            # full: our own reply or hand-back wakes us; a slot freed behind our back (the user
            # ended a held chat, a release) we only see by looking again
            self._sleep(run, now + min(CLIENT_POLL, flows.poll_interval, beat), self.poll_wake)


# --------------------------------------------------------------------------------------
# housekeeping jobs
# --------------------------------------------------------------------------------------
class Housekeeper(User):
    """Idle detection and stuck-chat release on the scenario's intervals (the seed's cron jobs)."""

    wait_time = constant(0)
    fixed_count = 1

    def on_start(self) -> None:
        run = _run()
        self.api = ChatAPI(_client(self, "housekeeper"))
        got = self.api.client.query("claim_housekeeper", "SELECT pg_try_advisory_lock(%s, %s)",
                                    (run.lock_namespace, HOUSEKEEPER_LOCK)).value
        if not got:  # another worker runs the jobs
            self.api.client.close()
            raise StopUser()
        flows = run.flows
        self.next_idle = flows.idle_detection_interval if flows.idle_detection_interval > 0 else math.inf
        self.next_stuck = flows.stuck_check_interval if flows.stuck_check_interval > 0 else math.inf

    def on_stop(self) -> None:
        self.api.client.close()

    @task
    def jobs(self) -> None:
        run = _run()
        flows, clock = run.flows, run.clock
        due = min(self.next_idle, self.next_stuck)
        if not math.isfinite(due):
            clock.sleep(flows.duration)  # both jobs off
            return
        clock.sleep_until(due)
        if run.stopping:
            return
        now = clock.now()
        try:
            if now >= self.next_idle:
                self.next_idle += flows.idle_detection_interval
                run.count("idle_released", self.api.release_idle(clock.wall(flows.idle_after)))
            if now >= self.next_stuck:
                self.next_stuck += flows.stuck_check_interval
                for chat_id in self.api.detect_stuck(clock.wall(flows.stuck_after) / 3600.0):
                    if self.api.release_and_reassign(chat_id, "stuck_timeout"):  # the simulation's reason
                        run.count("stuck_released")
        except CallFailed:
            run.count("housekeeper_errors")


# --------------------------------------------------------------------------------------
# load shape
# --------------------------------------------------------------------------------------
class ChatLoadShape(LoadTestShape):
    """Operators + housekeeper from the start; the RealUser pool follows the arrival curve.

    The pool only grows (a Locust user stopped mid-conversation would leave its chat
    dangling), sized by Little's law from the rate a little ahead.  The run ends after
    ``run_time_wall_s``: that is what bounds every load test.
    """

    def tick(self) -> tuple[int, float] | None:
        run = RUN
        if run is None:
            return None
        wall = self.get_run_time()
        if wall >= run.config.run_time_wall_s:
            return None
        target = pool_target(run.flows, run.config, wall * run.config.time_scale)
        self._pool = max(getattr(self, "_pool", 0), target)
        users = len(run.config.operators) + 1 + self._pool
        return users, 100.0  # Locust's advised maximum: ~0.5 wall s for 50 users
