"""``Operator``: one seeded operator acting out the model's two loops on the real database.

* the *worker* (the Locust task) answers the held chats' messages one at a time
  (``handle_time``; sometimes a hand-back; sometimes first an idle spell without replies or
  heartbeats, which idle detection must catch);
* the *poller* (a second greenlet with its own connection; one per ``operators.tabs``, all
  woken together, so several requests for one operator really race) asks
  ``assign_chat_to_operator`` whenever a slot is free, then every ``poll_interval``, and
  heartbeats when the operator showed no activity for ``idle_after / 2``.  In *push* mode it
  never asks (the dispatcher offers the chats, ``loadtest/listeners.py``): it only heartbeats.

They wake each other as the model's loops do (a taken chat wakes the worker, a freed slot
wakes the poller); what the database changed behind their back — a chat the dispatcher gave
this operator, a user writing to a held chat, a chat released or ended — wakes both through
the process's ``chatlab_news`` line (``loadtest/wakes.py``, migration 022), as the model's
operator is woken at once; they still look every ``poll_interval`` as a safety net.  An
operator whose shift starts at 0 logs in during ``on_start``, before the clock's t = 0, so
the floor is complete at t = 0 as in the model.  Which seeded operator a Locust user
plays is claimed with an advisory lock, so it is unique across distributed workers too.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import gevent
from gevent.event import Event as Wake
from locust import task
from locust.exception import StopUser

from chatlab.db.client import ChatDB
from loadtest import usererrors
from loadtest.acklog import ack
from loadtest.reporting import attempt
from loadtest.runtime import CLIENT_POLL, MIN_POLL_WALL_S, Runtime, current
from loadtest.settings import SeededOperator
from loadtest.users.base import ChatUser
from sim.errors import ChatLabError
from sim.population import Streams

log = logging.getLogger("chatlab.loadtest")


class Operator(ChatUser):
    role = "operator"
    fixed_count = 1  # set to the number of seeded operators when the configuration is read

    def on_start(self) -> None:
        super().on_start()
        run = current()
        self.me = self._claim(run)
        if self.me is None:
            self.db.close()
            raise StopUser()
        self.op = self.me.operator_id
        self.spec = run.scenario.operators.group_of(self.op - 1)  # its group: capacity, speed, skills
        self.rng = Streams(run.settings.seed).operators(len(run.settings.operators))[self.op - 1]
        self.idle = False
        self.on_shift_db: bool | None = None  # the shift state we last told the database
        self.last_activity = 0.0  # scenario time of our last activity (login, reply, unassign, touch)
        self.free_since = 0.0  # scenario time the worker finished its last message (or came back)
        self.work_wake, self.poll_wake = Wake(), Wake()
        pol = run.scenario.policy
        # how often a loop looks at the database for news it may not have been told about
        self.look_every = pol.poll_interval if run.wakes is not None else min(CLIENT_POLL, pol.poll_interval)
        if run.wakes is not None:
            run.wakes.operator(self.op, self.work_wake, self.poll_wake)
        self.poll_dbs = [self.connect() for _ in range(1 if run.push else run.scenario.operators.tabs)]
        if not run.go.is_set() and self.on_shift(0.0):  # in before t = 0, as the model's floor
            self._log_in(run, self.db, True)
            self.on_shift_db = True
        run.operators_ready += 1
        self.pollers = [gevent.spawn(self._poller, run, db) for db in self.poll_dbs]

    def _claim(self, run: Runtime) -> SeededOperator | None:
        for op in run.settings.operators:
            if self.db.try_claim(run.lock_namespace, op.operator_id):
                return op
        return None

    def on_stop(self) -> None:
        for poller in getattr(self, "pollers", ()):
            poller.kill(block=True, timeout=2)
        for db in getattr(self, "poll_dbs", ()):
            db.close()
        super().on_stop()

    # time and shifts -----------------------------------------------------------------------
    def on_shift(self, now: float) -> bool:
        return not self.me.shifts or any(a <= now < b for a, b in self.me.shifts)

    def next_shift_change(self, now: float) -> float:
        edges = [t for a, b in self.me.shifts for t in (a, b) if t > now]
        return min(edges) if edges else math.inf

    def _sleep(self, run: Runtime, until: float, wake: Wake | None = None) -> None:
        """Sleep until scenario time ``until`` (or the next shift change, or ``wake`` is set)."""
        clock = run.clock
        now = clock.now()
        until = min(until, self.next_shift_change(now))
        if until <= now:
            time.sleep(MIN_POLL_WALL_S)
            return
        wall = max(MIN_POLL_WALL_S, clock.wall(until - now)) if math.isfinite(until) else None
        if wake is None:
            gevent.sleep(wall if wall is not None else 3600.0)
        else:
            wake.wait(wall)
            wake.clear()

    def _log_in(self, run: Runtime, db: ChatDB, online: bool) -> None:
        attempt(db.set_operator_online, self.op, online)  # offline releases what it held; online = activity
        self.last_activity = run.clock.now() if run.go.is_set() else 0.0
        run.count("logins" if online else "logouts")

    # the worker (the Locust task) ----------------------------------------------------------
    def _loop(self, run: Runtime, step: Callable[[Runtime], None], errors: str) -> None:
        """Repeat ``step`` until the run stops; a failed call (already a Locust failure) is counted
        under ``errors`` and the operator carries on after a poll interval, as a real client would."""
        while not run.stopping:
            try:
                step(run)
            except ChatLabError:
                run.count(errors)
                time.sleep(run.poll_wall(run.scenario.policy.poll_interval))

    @task
    def work(self) -> None:
        run = current()
        run.go.wait()  # scenario t = 0
        self._loop(run, self._work_step, "operator_errors")

    def _work_step(self, run: Runtime) -> None:
        clock = run.clock
        ops = self.spec
        now = clock.now()
        shift = self.on_shift(now)
        if shift != self.on_shift_db:  # a shift starts or ends (the model's shift process)
            if shift and not self.idle:
                self._log_in(run, self.db, True)
                self.free_since = clock.now()
            elif not shift and self.on_shift_db:
                self._log_in(run, self.db, False)
            self.on_shift_db = shift
            self.poll_wake.set()
        if not shift:
            self._sleep(run, math.inf)
            return
        pending = self.db.inbox(self.op).pending
        if not pending:
            # nothing to answer: the poller wakes us when it takes a chat; a user writing to
            # a chat we hold (legacy) we only see by looking
            self._sleep(run, now + self.look_every, self.work_wake)
            return
        work = pending[0]
        if ops.idle_probability and self.rng.random() < ops.idle_probability:
            self._idle(run)
            return
        # the model's worker starts the moment the message could be answered (it is woken then), or
        # when it finished the previous one; we heard of it a round trip later (run.scenario_at)
        start = max(run.scenario_at(work.ready_at, now), min(self.free_since, now))
        self._sleep(run, start + float(ops.handle_time.sample(self.rng)))
        if run.stopping or not self.on_shift(clock.now()):
            return  # the shift ended meanwhile: logging out released the chat (effort lost)
        if ops.unassign_probability and self.rng.random() < ops.unassign_probability:
            done = attempt(self.db.unassign_chat, self.op, work.chat_id)[0]
            run.count("unassigns" if done else "unassign_lost")
        else:  # not done: idle detection or a stuck release took it meanwhile (effort lost)
            done, message = attempt(self.db.operator_message, self.op, work.chat_id, "answer")
            run.count("replies" if done else "reply_lost")
            if done:
                ack("reply", chat=work.chat_id, message=message)
        if done:
            self.last_activity = clock.now()
        self.free_since = clock.now()
        if run.wakes is None or not done or run.push:
            self.poll_wake.set()  # a slot is free: the poller asks again
            return
        # The model's poller asks the instant the slot frees.  A hand-off to the poller (a greenlet
        # switch and its inbox look) kept that moment ~2.5 wall ms = 0.15 scenario s at K = 60 open,
        # and other operators' asks took the replied chat in 18 % of legacy's replies (the sim: 0.5 %):
        # so the worker asks at once on its own connection, and the news of its own reply (which has
        # come in by the time the ask returns) must not make the poller ask a second time.
        took = self._ask(run, self.db)
        self.poll_wake.clear()
        if took:
            self.poll_wake.set()  # a slot may still be free: the poller asks again at once, as the model's

    def _ask(self, run: Runtime, db: ChatDB) -> bool:
        """One ``assign_chat_to_operator`` call; True if it gave us a chat (the worker is woken)."""
        pol, wall = run.scenario.policy, run.clock.wall
        routing = pol.routing  # the SQL compares every duration of the rules with the database's (wall) clock
        ok, got = attempt(db.assign_chat_to_operator, self.op, run.settings.policy,
                          wall(pol.fallback_after), run.salt(),
                          None if routing.relax_after is None else wall(routing.relax_after),
                          None if routing.sla_targets is None else [wall(t) for t in routing.sla_targets],
                          None if routing.sticky_for is None else wall(routing.sticky_for),
                          routing.fair_limit, wall(routing.fair_window))
        if ok and got is not None:
            run.count("assignments")
            self.work_wake.set()
            return True
        return False

    def _idle(self, run: Runtime) -> None:
        """Silent for ``idle_duration``: no answers, no heartbeat, no polling."""
        clock = run.clock
        self.idle = True
        run.count("idle_episodes")
        end = clock.now() + float(self.spec.idle_duration.sample(self.rng))
        try:
            while clock.now() < end and not run.stopping:
                self._sleep(run, end)  # a shift change wakes us early: keep being idle
                if self.on_shift_db and not self.on_shift(clock.now()):
                    self._log_in(run, self.db, False)  # the shift ends while away (the model's shift process)
                    self.on_shift_db = False
        finally:
            self.idle = False
        if self.on_shift_db and not run.stopping:
            self._log_in(run, self.db, True)  # a touch if still online, a new login if logged out
        self.free_since = clock.now()
        self.poll_wake.set()

    # the poller (a greenlet) -------------------------------------------------------------
    def _poller(self, run: Runtime, db: ChatDB) -> None:
        run.go.wait()  # scenario t = 0
        while not run.stopping:
            try:
                self._loop(run, lambda r: self._poll_step(r, db), "poller_errors")
            except gevent.GreenletExit:
                raise
            except Exception as exc:  # never die silently: the operator would stop taking chats
                log.exception("operator %s poller", self.op)
                run.count("poller_crashes")
                usererrors.report(self.environment, self, exc)  # and the run fails at the end
                time.sleep(run.poll_wall(run.scenario.policy.poll_interval))

    def _poll_step(self, run: Runtime, db: ChatDB) -> None:
        usererrors.inject_fault("operator.poller")  # tests only ($CHATLAB_LOADTEST_FAULT)
        sc, clock = run.scenario, run.clock
        pol, jobs = sc.policy, sc.jobs
        now = clock.now()
        if not self.on_shift(now) or self.idle or self.on_shift_db is None:
            self._sleep(run, now + pol.poll_interval, self.poll_wake)
            return
        beat = jobs.idle_after / 4 if jobs.idle_detection_interval > 0 else math.inf
        inbox = db.inbox(self.op)
        if not inbox.online:
            if not run.push:  # logged out (idle detection) while away: the pull client logs back in
                self._log_in(run, db, True)
        elif beat < math.inf and now - self.last_activity >= jobs.idle_after / 2:  # heartbeat (the model's rule:
            # only where idle detection runs)
            attempt(db.touch_operator, self.op)
            self.last_activity = now
        if run.push:  # the dispatcher offers the chats: nothing to ask, only the heartbeat to keep
            self._sleep(run, now + min(self.look_every, beat), self.poll_wake)
            return
        if len(inbox.held) < self.me.max_chats:
            self.poll_wake.clear()  # this ask answers every wake so far: a late one must not make it ask twice
            if self._ask(run, db):
                return  # ask again at once while a slot is free
            self._sleep(run, now + min(pol.poll_interval, beat), self.poll_wake)
        else:
            # full: our own reply or hand-back wakes us; a slot freed behind our back (the user
            # ended a held chat, a release) we only see by looking again
            self._sleep(run, now + min(self.look_every, beat), self.poll_wake)
