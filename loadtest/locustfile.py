"""Locust suite: real users, operators and the housekeeping jobs against the real SQL functions.

Run it through ``chatlab loadtest SCENARIO`` (which creates a fresh schema, seeds the
operators and writes the configuration this file reads from ``$CHATLAB_LOADTEST_CONFIG``).

The same flows as the simulation, on a wall clock K times faster (``time_scale``):

* chats arrive open-loop at the scenario's rate (arrival instants drawn up front from the
  seed); a ``RealUser`` takes the next arrival, opens the chat, waits for the operator's
  answer, thinks, writes again, and ends the chat after its number of exchanges (or
  abandons it when nobody took it within its patience);
* an ``Operator`` is one seeded operator: while on shift and not idle it asks
  ``assign_chat_to_operator`` for work (with the run's policy) whenever it has capacity,
  answers each chat after its handle time, sometimes hands a chat back, and sometimes
  goes idle (stops replying and touching), which the idle detection must notice;
* the ``Housekeeper`` runs idle detection and stuck-chat release on the scenario's
  intervals.

IMPORTANT: ``import locust`` must stay the first import (gevent patches ``select`` there);
psycopg imported earlier would block the whole process.  ``ensure_cooperative_wait``
fails loudly if that ever happens.
"""

from __future__ import annotations

import locust  # noqa: F401  # must be first: gevent patches select before psycopg is imported
from locust import LoadTestShape, User, constant, events, task
from locust.exception import StopUser

import itertools
import json
import math
import os
import time
import zlib
from dataclasses import dataclass
from typing import Any

import gevent
import numpy as np
from gevent.queue import Empty, Queue

from loadtest.pgclient import CallFailed, PgClient, ensure_cooperative_wait

WAIT_FUNCTION = ensure_cooperative_wait()  # raises NotCooperative when psycopg would block

from loadtest.arrivals import arrival_times  # noqa: E402
from loadtest.chatapi import ChatAPI  # noqa: E402
from loadtest.clock import ScaledClock  # noqa: E402
from loadtest.config import LoadTestConfig, SeededOperator  # noqa: E402
from loadtest.flowparams import FlowParams, from_scenario  # noqa: E402
from loadtest.plan import pool_target  # noqa: E402

#: advisory-lock key of the housekeeper (operators use their id); the namespace is the
#: run's schema, so two load tests on one server never claim each other's operators
HOUSEKEEPER_LOCK = -1
#: scenario seconds between a waiting real user's looks at its chat (the UI's refresh)
USER_POLL = 2.0


@dataclass
class Run:
    """Process-wide state of this Locust process (set up in ``init``/``test_start``)."""

    config: LoadTestConfig
    flows: FlowParams
    clock: ScaledClock
    arrivals: Queue
    worker_index: int = 0
    started_at_db: str | None = None
    stopping: bool = False
    feeder: Any = None

    def __post_init__(self) -> None:
        self.counters: dict[str, float] = {}
        self.lateness: list[float] = []

    def count(self, key: str, n: float = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def rng(self, *key: int) -> np.random.Generator:
        """A reproducible stream per (role, index): same seed, same draws for the same user."""
        return np.random.default_rng(np.random.SeedSequence([self.config.seed, self.worker_index, *key]))

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
@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    """Read the run's configuration and size the user classes (the master does too)."""
    global RUN
    from sim.scenario import load_scenario  # the simulation's loader: same scenario, same validation

    config = LoadTestConfig.from_env()
    flows = from_scenario(load_scenario(config.scenario))
    worker_index = int(getattr(environment.runner, "worker_index", 0) or 0)
    RUN = Run(config=config, flows=flows, clock=ScaledClock(config.time_scale), arrivals=Queue(),
              worker_index=worker_index)
    Operator.fixed_count = len(config.operators)
    Housekeeper.fixed_count = 1


def _role(environment: Any) -> str:
    return type(getattr(environment, "runner", None)).__name__


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    """Scenario t = 0: start the clock, record the database's time of it, release arrivals.

    The master of a distributed run only records the time (it runs no users).
    """
    run = RUN
    if run is None or environment.runner is None:
        return
    run.clock.reset()
    client = PgClient(run.config.dsn, schema=run.config.schema, application_name="chatlab-loadtest-start")
    try:
        run.started_at_db = client.conn.execute("SELECT clock_timestamp()").fetchone()[0].isoformat()
    finally:
        client.close()
    if _role(environment) != "MasterRunner":
        times = _arrivals(run)
        run.count("arrivals_scheduled", len(times))
        run.feeder = gevent.spawn(_feed_arrivals, run, times)
    _write_run_info(run, environment)


def _arrivals(run: Run) -> list[tuple[int, float]]:
    """(chat index, scenario time) of this process's share of the arrivals."""
    flows, workers = run.flows, max(1, run.config.workers)
    if flows.trace_times:  # a recorded trace is replayed as it is, split round-robin over workers
        return [(i, t) for i, t in enumerate(flows.trace_times)
                if t < run.config.duration and i % workers == run.worker_index]
    times = arrival_times(flows.rate_at, run.config.duration, run.rng(0), share=1.0 / workers)
    return list(enumerate(times))


def _feed_arrivals(run: Run, times: list[tuple[int, float]]) -> None:
    """Release each arrival at its instant; RealUsers take them from the queue in order."""
    for index, t in times:
        run.clock.sleep_until(t)
        if run.stopping:
            return
        run.arrivals.put((index, t))


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
        "arrival_lateness_p50": float(np.percentile(late, 50)) if late.size else None,
        "arrival_lateness_max": float(late.max()) if late.size else None,
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
    """A customer: one conversation at a time, taken from the open-loop arrival stream.

    As the simulation's user: writes (opens the chat), waits for the answer, thinks, writes
    again; after ``exchanges`` answers (and a last think) it ends the chat ``resolved``.
    ``patience`` after writing, and every ``patience`` after that, it ends the chat
    ``abandoned`` if the chat is still waiting for an operator.
    """

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
            index, due = run.arrivals.get(timeout=0.5)
        except Empty:
            return
        run.lateness.append(max(0.0, run.clock.now() - due))
        try:
            self.converse(run, index)
        except CallFailed:
            run.count("conversations_failed")  # already a Locust failure; next arrival

    def converse(self, run: Run, index: int) -> None:
        flows, clock = run.flows, run.clock
        rng = run.rng(1, index)  # draws depend on the arrival, not on which Locust user took it
        fixed = flows.trace_exchanges[index] if index < len(flows.trace_exchanges) else None
        exchanges = int(fixed) if fixed else max(1, int(round(flows.exchanges.sample(rng))))
        patience = float(flows.patience.sample(rng))
        thinks = [float(flows.think_time.sample(rng)) for _ in range(exchanges)]
        real_user_id = run.worker_index * 1_000_000_000 + index + 1
        chat_id = self.api.user_message(real_user_id, f"hello from user {real_user_id}")
        if chat_id is None:
            run.count("open_refused")
            return
        run.count("chats_opened")
        for i in range(exchanges):
            if not self.wait_for_answer(run, chat_id, patience):
                return
            clock.sleep(thinks[i])
            if run.stopping:
                return
            if i == exchanges - 1:
                if self.api.end_chat(chat_id, "resolved"):
                    run.count("chats_resolved")
                return
            if self.api.user_message(real_user_id, f"message {i + 2}", chat_id) is None:
                run.count("chats_closed_elsewhere")
                return
            run.count("user_messages")

    def wait_for_answer(self, run: Run, chat_id: int, patience: float) -> bool:
        """Poll until an operator answered my last message; False if the chat ended (or I gave up)."""
        clock = run.clock
        next_check = clock.now() + patience
        poll = run.poll_wall(min(USER_POLL, run.flows.poll_interval))
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

    As the simulation's operator (pull mode): online during its shifts; works one message
    at a time, oldest first, among the chats it holds (``handle_time``, then a reply, or
    with ``unassign_probability`` a hand-back); per message it may first go silent for
    ``idle_duration`` (``idle_probability``: no replies, no heartbeat, so idle detection
    should release its chats and log it out; it logs in again when back).  With free
    capacity and nothing to answer it asks for a chat, at once and then every
    ``poll_interval``.  A responsive operator heartbeats every ``idle_after / 4``.  What it
    holds and whether it is logged in are read from the database (``operator_inbox``).
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
        self.rng = run.rng(2, self.op)
        self.logged_in = False  # what we told the database last
        self.idle = False
        flows = run.flows
        self.heartbeat_every = flows.idle_after / 4 if flows.idle_detection_interval > 0 else math.inf
        self.next_heartbeat = self.heartbeat_every

    def _claim(self, run: Run) -> SeededOperator | None:
        for op in run.config.operators:
            got = self.api.client.query("claim_operator", "SELECT pg_try_advisory_lock(%s, %s)",
                                        (run.lock_namespace, op.operator_id)).value
            if got:
                return op
        return None

    def on_stop(self) -> None:
        self.api.client.close()

    # time and shifts ---------------------------------------------------------------------
    def _on_shift(self, now: float) -> bool:
        return not self.me.shifts or any(a <= now < b for a, b in self.me.shifts)

    def _next_shift_change(self, now: float) -> float:
        edges = [t for a, b in self.me.shifts for t in (a, b) if t > now]
        return min(edges) if edges else math.inf

    def _wait_until(self, run: Run, until: float) -> None:
        """Sleep until scenario time ``until``, heartbeating when due; wake early at a shift change."""
        clock = run.clock
        shift_change = self._next_shift_change(clock.now())
        while not run.stopping:
            now = clock.now()
            if now >= until or now >= shift_change:
                return
            if not self.idle and self.logged_in and now >= self.next_heartbeat:
                self.api.touch_operator(self.op)
                self.next_heartbeat = now + self.heartbeat_every
            wake = min(until, shift_change, self.next_heartbeat if not self.idle else math.inf)
            time.sleep(max(run.config.min_poll_wall_s, clock.wall(wake - now)))

    def _log_in(self, run: Run, online: bool) -> None:
        self.api.set_operator_online(self.op, online)  # offline releases the chats it held
        self.logged_in = online
        self.next_heartbeat = run.clock.now() + self.heartbeat_every
        run.count("logins" if online else "logouts")

    # the work loop -------------------------------------------------------------------------
    @task
    def work(self) -> None:
        run = _run()
        try:
            while not run.stopping:
                self._step(run)
        except CallFailed:
            run.count("operator_errors")
            time.sleep(run.poll_wall(run.flows.poll_interval))

    def _step(self, run: Run) -> None:
        flows, clock = run.flows, run.clock
        now = clock.now()
        if not self._on_shift(now):
            if self.logged_in:
                self._log_in(run, False)
            self._wait_until(run, math.inf)  # until the next shift starts (or the run ends)
            return
        inbox = self.api.inbox(self.op)
        if not inbox.online:  # start of shift, or logged out by idle detection while away
            self._log_in(run, True)
        pending = inbox.pending
        if pending:
            work = pending[0]
            if flows.idle_probability and self.rng.random() < flows.idle_probability:
                self.idle = True  # silent: no answers, no heartbeat
                run.count("idle_episodes")
                self._wait_until(run, now + float(flows.idle_duration.sample(self.rng)))
                self.idle = False
                if self._on_shift(clock.now()) and not run.stopping:
                    self._log_in(run, True)  # touch if still online, log in again if not
                return
            self._wait_until(run, now + float(flows.handle_time.sample(self.rng)))
            if run.stopping or not self._on_shift(clock.now()):
                return  # the shift ended meanwhile: logging out released the chat
            if flows.unassign_probability and self.rng.random() < flows.unassign_probability:
                run.count("unassigns" if self.api.unassign(self.op, work.chat_id) else "unassign_lost")
            else:  # False: idle or stuck release took it meanwhile (effort lost, as in the sim)
                run.count("replies" if self.api.reply(self.op, work.chat_id, "an answer") else "reply_lost")
            return
        if len(inbox.held) < self.me.max_chats:
            salt = flows.salt if flows.salt is not None else int(self.rng.integers(0, 2**31 - 1))
            # the SQL compares fallback_after with the database's (wall) clock
            if self.api.assign(self.op, run.config.policy, clock.wall(flows.fallback_after), salt) is not None:
                run.count("assignments")
                return
        self._wait_until(run, now + flows.poll_interval)


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
