"""The SimPy model: real users and operators acting on a :class:`~sim.system.ChatSystem`.

SimPy only decides *when* things happen; every state change is a call on the
``ChatSystem`` (which applies the state machine and records the event log), so the
simulation cannot drift from the semantics the database implements.

Processes (all reproducible from one seed; every purpose has its own numpy stream, and the
users come from :class:`sim.population.Population`, the same users the load test plays, so
two policies — and the simulation and the database — see the *same* users: common random
numbers make comparisons sharper):

* **arrivals** — the population's arrival instants (Poisson, a rate curve by thinning, or a
  CSV trace).  Each arrival starts a user with its drawn exchanges, patience and thinks.
* **user** — writes (opens the chat), waits for the operator's reply, thinks, writes
  again; after ``exchanges`` replies it ends the chat (``resolved``).  If, ``patience``
  seconds after writing, its chat is still waiting for assignment it ends it
  (``abandoned``); the check repeats every ``patience`` seconds while it waits.
* **operator** — online during its shifts.  Its *worker* answers one message at a time,
  oldest first, among the chats it holds: ``handle_time`` later it replies (or, with
  ``unassign_probability``, hands the chat back).  With ``idle_probability`` per message
  it first goes silent for ``idle_duration`` (ground-truth ``operator_idle`` /
  ``operator_active`` rows); idle detection then releases its chats and logs it out, and
  it logs back in when it returns.  A chat it holds with nothing to answer (the legacy
  policy's premature assignment) just occupies a slot until its user writes.
  *Pull* mode: the operator's client (its *poller*) asks (``assign``) as soon as a slot is
  free and then every ``poll_interval``, also while the operator types.  *Push* mode: whenever a chat enters the queue, capacity frees up or
  ``poll_interval`` passes, a dispatcher offers the queue to the free operators in turn
  (rotating start) — the same ``Policy.pick`` decides in both modes.
* **heartbeat** — a responsive, online operator's client calls ``touch_operator`` when the
  operator has shown no activity for ``idle_after / 2`` seconds (checked every
  ``idle_after / 4``), so idle detection only fires for operators who really stopped
  responding (the seed's "no false positives"), while ``last_activity_at`` (what
  ``longest_idle`` ranks by) still mostly reflects real work: replies and unassigns.
* **jobs** — idle detection, stuck-chat release and (with ``jobs.reassign_after``) the
  no-answer timeout, every configured interval.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import simpy

from sim.dispatch import dispatch
from sim.eventlog import EventLogBuilder
from sim.policies import Policy, RandomChoice, make_policy
from sim.pollgrid import PollPool, chain_rank
from sim.sleepers import SleepingPollers
from sim.population import SALT_STREAM, Arrival, Population, Streams
from sim.routing import ROUTING_RULES
from sim.scenario import Group, Scenario, load_scenario
from sim.statemachine import State
from sim.system import ChatSystem

_WA = State.WAITING_ASSIGNMENT


def resolve_policy(scenario: Scenario, policy: str | Policy | None = None,
                   policy_params: Mapping[str, float] | None = None) -> Policy:
    """The policy object for a run: given object, given name, or the scenario's default.

    ``exclude_last_fallback`` takes ``fallback_after`` from the scenario unless
    ``policy_params`` says otherwise.
    """
    if isinstance(policy, Policy):
        return policy
    name = policy or scenario.policy.name
    params = dict(policy_params or {})
    if name == "exclude_last_fallback":
        params.setdefault("fallback_after", scenario.policy.fallback_after)
    for rule in ROUTING_RULES:  # routing rules are the scenario's (reports show them as parameters)
        params.pop(rule, None)
    return make_policy(name, scenario.policy.routing, **params)


@dataclass(eq=False)
class _UserChat:
    """What the model knows about a chat beyond the system: is a user message unanswered?"""

    chat_id: int
    user_id: int
    reply: simpy.Event
    pending: bool = True  # the user's last message has no operator reply yet
    pending_since: float = 0.0


@dataclass(eq=False)
class _Agent:
    """An operator's model-side state."""

    index: int  # 0-based, as in scenario shifts
    id: int  # ChatSystem operator id
    rng: np.random.Generator
    windows: list[tuple[float, float]]
    group: Group
    on_shift: bool = False
    idle: bool = False
    work_wake: simpy.Event | None = None  # the worker waits on it when there is nothing to answer
    poll_wakes: dict[int, simpy.Event] = field(default_factory=dict)  # each tab's poller waits on its own
    #: per tab: the rank a chain of polls started by the last wake-up would have (sim/pollgrid.py),
    #: and whether the last resume was its own poll tick (the chain goes on)
    chain: dict[int, tuple] = field(default_factory=dict)
    ticked: dict[int, bool] = field(default_factory=dict)
    #: per tab: what a sleeping poller waits on (its wake-up, as a condition: see ChatModel.poller)
    sleeping: dict[int, simpy.Event] = field(default_factory=dict)
    pollers: dict[int, simpy.Process] = field(default_factory=dict)


class ChatModel(SleepingPollers):
    """One simulation run.  Use :func:`run_simulation` unless you need the pieces.

    ``ChatModel(scenario, policy, seed, record_calls=True).run()`` also leaves every
    operation in ``model.system.calls`` (:class:`sim.system.Call`), including heartbeats
    and the random policy's salts, which the event log does not show: what a replay
    against the database needs (:func:`sim.system.replay_calls`).
    """

    def __init__(self, scenario: Scenario, policy: Policy, seed: int, *, record_calls: bool = False) -> None:
        self.scenario = scenario
        self.policy = policy
        self.seed = int(seed)
        self.env = simpy.Environment()
        self.log = EventLogBuilder()
        self.system = ChatSystem(log=self.log, record_calls=record_calls)
        streams = Streams(self.seed)
        self.population = Population(scenario, self.seed)
        self.rng_salt = streams.generator(SALT_STREAM)
        ops = scenario.operators
        for topic in scenario.users.topics:
            self.system.define_topic(topic.name, topic.skill, topic.priority, topic.weight, now=0.0)
        self.agents: list[_Agent] = []
        for i, rng in enumerate(streams.operators(ops.count)):
            group = ops.group_of(i)
            op_id = self.system.create_operator(max_chats=group.max_chats, skills=sorted(group.skills), now=0.0)
            self.agents.append(_Agent(i, op_id, rng, scenario.operator_shifts(i), group))
        self.by_id = {a.id: a for a in self.agents}
        self.chats: dict[int, _UserChat] = {}
        self.push = scenario.policy.mode == "push"
        self.poll = scenario.policy.poll_interval
        self._users = 0
        self._random_policy = isinstance(policy, RandomChoice)
        # Pollers that found the queue empty sleep in the pool until it opens (sim/pollgrid.py).
        # Not with random's drawn salts: every ask draws one, so skipping asks would shift them.
        self.pool: PollPool | None = None
        if not self.push and self.poll > 0 and not (self._random_policy and scenario.policy.salt is None):
            self.pool = PollPool(self.poll)
        self._pool_timer: simpy.Event | None = None  # the pending wake-up of the pool's next tick
        self._pool_timer_at = math.inf
        self._keys_of = {a.id: tuple((a.index, tab) for tab in range(scenario.operators.tabs)) for a in self.agents}
        self._chains = itertools.count()

    # ----------------------------------------------------------------- helpers

    def _salt(self) -> int:
        """The random policy's salt: the scenario's fixed one or a fresh draw (only ``random`` uses it,
        so other policies skip the draw; the salt stream feeds nothing else)."""
        fixed = self.scenario.policy.salt
        if fixed is not None:
            return fixed
        return int(self.rng_salt.integers(0, 2**31)) if self._random_policy else 0

    def _wake(self, agent: _Agent | None) -> None:
        """Something changed for this operator (new work, freed capacity, shift): both loops re-check."""
        if agent is None:
            return
        if self.pool is not None:
            proc = self.env.active_process
            cause = proc._target if proc is not None else None
            for tab, ev in agent.poll_wakes.items():
                self.pool.discard((agent.index, tab))
                if not ev.triggered and proc is not agent.pollers[tab]:  # its own wake-up goes on its chain
                    agent.chain[tab] = chain_rank(self.env.now, cause, self.poll, next(self._chains))
        for ev in (agent.work_wake, *agent.poll_wakes.values()):
            if ev is not None and not ev.triggered:
                ev.succeed()
        if self.pool is not None:  # its key may have changed: who is next may have too
            self._pool_next()

    def _assign(self, agent: _Agent) -> int | None:
        return self.system.assign(agent.id, self.policy, now=self.env.now, salt=self._salt())

    def queue_changed(self) -> None:
        """A chat entered the queue or capacity freed up: in push mode, dispatch now; in pull
        mode, sleeping pollers wake at their next tick (:meth:`_pool_next`)."""
        if self.push:
            self.dispatch()
        elif self.pool is not None:
            self._pool_next()

    def dispatch(self) -> None:
        """Push mode: offer the queue to free operators in turn until nobody takes anything
        (:func:`sim.dispatch.dispatch`, the rule SQL's ``dispatch_waiting_chats`` follows)."""
        for op, _ in dispatch(self.system, self.policy, now=self.env.now, salt=self._salt):
            self._wake(self.by_id[op])

    # ----------------------------------------------------------------- arrivals and users

    def arrivals(self) -> Generator[simpy.Event, Any, None]:
        env, population = self.env, self.population
        if self.scenario.users.arrivals.kind == "trace":
            for when, exchanges in population.trace():
                if when >= self.scenario.duration:
                    return
                if when > env.now:
                    yield env.timeout(when - env.now)
                self._start_user(population.draw(env.now, exchanges))
            return
        for gap, accepted in population.candidates():
            yield env.timeout(gap)
            if accepted:
                self._start_user(population.draw(env.now))

    def _start_user(self, arrival: Arrival) -> None:
        self._users += 1
        self.env.process(self.user(arrival))

    def user(self, arrival: Arrival) -> Generator[simpy.Event, Any, None]:
        env, system = self.env, self.system
        user_id, exchanges, patience, thinks = arrival.user_id, arrival.exchanges, arrival.patience, arrival.thinks
        chat_id = system.real_user_message(user_id, "hello", topic=arrival.topic, now=env.now)
        chat = self.chats[chat_id] = _UserChat(chat_id, user_id, env.event(), pending_since=env.now)
        self.queue_changed()
        for i in range(exchanges):
            if math.isfinite(patience):
                while not chat.reply.triggered:
                    yield chat.reply | env.timeout(patience)
                    if not chat.reply.triggered and system.state_of(chat_id) is _WA:
                        system.end_chat(chat_id, "abandoned", now=env.now)
                        return
            else:
                yield chat.reply
            yield env.timeout(thinks[i])
            if i == exchanges - 1:
                holder = system.holder_of(chat_id)
                system.end_chat(chat_id, "resolved", now=env.now)
                if holder is not None:  # legacy: it had been grabbed again; the slot frees up
                    self._wake(self.by_id[holder])
                    self.queue_changed()
                return
            chat.reply = env.event()
            system.real_user_message(user_id, "reply", chat_id, now=env.now)
            chat.pending, chat.pending_since = True, env.now
            holder = system.holder_of(chat_id)
            if holder is not None:  # legacy: someone holds it already and now has work
                self._wake(self.by_id[holder])
            else:
                self.queue_changed()

    # ----------------------------------------------------------------- operators

    def shifts(self, agent: _Agent) -> Generator[simpy.Event, Any, None]:
        env, system = self.env, self.system
        for start, end in agent.windows:
            if start > env.now:
                yield env.timeout(start - env.now)
            agent.on_shift = True
            if not agent.idle:
                system.set_operator_online(agent.id, True, now=env.now)
                self.queue_changed()
            self._wake(agent)
            if end >= self.scenario.duration:
                return
            yield env.timeout(end - env.now)
            agent.on_shift = False
            if system.set_operator_online(agent.id, False, now=env.now):
                self.queue_changed()
            self._wake(agent)

    def heartbeat(self, agent: _Agent, idle_after: float) -> Generator[simpy.Event, Any, None]:
        env, system = self.env, self.system
        op = system.operators[agent.id]
        while True:
            yield env.timeout(idle_after / 4)
            if agent.on_shift and not agent.idle and op.online and \
                    (op.last_activity_at is None or env.now - op.last_activity_at >= idle_after / 2):
                system.touch_operator(agent.id, now=env.now)
                if self.pool is not None:  # longest_idle's order changed
                    self._pool_next()

    def _next_work(self, agent: _Agent) -> _UserChat | None:
        best: _UserChat | None = None
        for chat_id in self.system.operators[agent.id].chats:
            chat = self.chats[chat_id]
            if chat.pending and (best is None or (chat.pending_since, chat.chat_id) < (best.pending_since, best.chat_id)):
                best = chat
        return best

    def worker(self, agent: _Agent) -> Generator[simpy.Event, Any, None]:
        """Answer the held chats' unanswered messages one at a time, oldest first."""
        env, system, ops = self.env, self.system, agent.group
        while True:
            work = self._next_work(agent) if agent.on_shift else None
            if work is None:
                agent.work_wake = env.event()
                yield agent.work_wake
                continue
            if ops.idle_probability and agent.rng.random() < ops.idle_probability:
                yield from self._idle(agent)
                continue
            yield env.timeout(ops.handle_time.sample(agent.rng))
            if system.holder_of(work.chat_id) != agent.id or not work.pending:
                continue  # taken away meanwhile (shift end, idle or stuck release): effort lost
            if ops.unassign_probability and agent.rng.random() < ops.unassign_probability:
                system.unassign_chat(agent.id, work.chat_id, now=env.now)
            else:
                system.operator_message(agent.id, work.chat_id, "answer", now=env.now)
                work.pending = False
                work.reply.succeed()
            self._wake(agent)  # a slot is free: the poller asks again
            self.queue_changed()

    def poller(self, agent: _Agent, tab: int = 0) -> Generator[simpy.Event, Any, None]:
        """Pull mode: while the operator is responsive and has a free slot, its client asks for a chat
        at once and then every ``poll_interval`` (in the background, also while it types)."""
        env, system = self.env, self.system
        pool, key = self.pool, (agent.index, tab)
        ticked = False  # this round was started by the poller's own tick (its chain of ticks goes on)
        rank: tuple = ()
        while True:
            wake = agent.poll_wakes[tab] = env.event()
            if not agent.on_shift or agent.idle:
                yield wake
                ticked = False
                continue
            if not system.is_online(agent.id):  # logged out while away: log back in
                system.set_operator_online(agent.id, True, now=env.now)
            if not system.has_capacity(agent.id):
                yield wake
                ticked = False
                continue
            if self._assign(agent) is not None:
                self._wake(agent)  # the worker has something to read
                continue
            if pool is not None:
                # Sleep until the tick it would ask at next; the pool skips the ticks at which the
                # queue is empty (an ask would return None and change nothing).
                if not ticked:
                    rank = agent.chain.get(tab, ())
                    if not rank or rank[1] not in (env.now, -env.now):
                        rank = chain_rank(env.now, None, self.poll, next(self._chains))
                pool.add(key, env.now + self.poll, rank)
                agent.ticked[tab] = False
                # A condition, as ``wake | timeout`` was: a wake-up reaches the poller one step
                # later than a plain event would, and the pool's tick triggers the condition itself,
                # as the timeout did — so same-instant events keep SimPy's order.
                sleep = agent.sleeping[tab] = env.any_of([wake])
                self._pool_next()
                yield sleep
                ticked = agent.ticked[tab]
                pool.discard(key)
                continue
            yield wake | env.timeout(self.poll)

    def _idle(self, agent: _Agent) -> Generator[simpy.Event, Any, None]:
        env, system = self.env, self.system
        agent.idle = True
        system.mark_operator_idle(agent.id, True, now=env.now)
        yield env.timeout(agent.group.idle_duration.sample(agent.rng))
        agent.idle = False
        system.mark_operator_idle(agent.id, False, now=env.now)
        if agent.on_shift:
            if system.is_online(agent.id):
                system.touch_operator(agent.id, now=env.now)
            else:  # idle detection logged it out: log back in
                system.set_operator_online(agent.id, True, now=env.now)
                self.queue_changed()
        self._wake(agent)

    # ----------------------------------------------------------------- background jobs

    def idle_detection(self, every: float, idle_after: float) -> Generator[simpy.Event, Any, None]:
        while True:
            yield self.env.timeout(every)
            if self.system.release_idle_operator_chats(idle_after, now=self.env.now):
                self.queue_changed()
            if self.pool is not None:  # a present operator it logged out asks (and logs in) at its next tick
                self._pool_next()
                for agent in self.agents:
                    if agent.on_shift and not agent.idle and not self.system.is_online(agent.id):
                        self._pool_login(agent)

    def stuck_release(self, every: float, stuck_after: float) -> Generator[simpy.Event, Any, None]:
        env, system = self.env, self.system
        while True:
            yield env.timeout(every)
            released = False
            for chat_id in system.detect_stuck_chats(stuck_after, now=env.now):
                holder = system.release_and_reassign_chat(chat_id, "stuck_timeout", now=env.now)
                self._wake(self.by_id[holder])
                released = True
            if released:
                self.queue_changed()

    def no_answer_release(self, every: float, after: float) -> Generator[simpy.Event, Any, None]:
        """The no-answer timeout: chats their operator has not answered in time go back to the queue."""
        env, system = self.env, self.system
        while True:
            yield env.timeout(every)
            holders = {h for c in system.open_chats() if (h := c.assigned_operator_id) is not None}
            if system.release_unanswered_chats(after, now=env.now):
                for holder in holders:
                    self._wake(self.by_id[holder])
                self.queue_changed()

    def push_ticker(self) -> Generator[simpy.Event, Any, None]:
        """Push mode: re-offer the queue periodically (a fallback chat may have become eligible)."""
        while True:
            yield self.env.timeout(self.poll)
            self.dispatch()

    # ----------------------------------------------------------------- running

    def start(self) -> None:
        env, jobs = self.env, self.scenario.jobs
        for agent in self.agents:
            env.process(self.shifts(agent))
            env.process(self.worker(agent))
            if not self.push:
                for tab in range(self.scenario.operators.tabs):  # one poller per tab: they ask in turn
                    agent.pollers[tab] = env.process(self.poller(agent, tab))
            if jobs.idle_detection_interval > 0:
                env.process(self.heartbeat(agent, jobs.idle_after))
        env.process(self.arrivals())
        if jobs.idle_detection_interval > 0:
            env.process(self.idle_detection(jobs.idle_detection_interval, jobs.idle_after))
        if jobs.stuck_check_interval > 0:
            env.process(self.stuck_release(jobs.stuck_check_interval, jobs.stuck_after))
        if jobs.reassign_after is not None:
            env.process(self.no_answer_release(jobs.reassign_check_interval, jobs.reassign_after))
        if self.push:
            env.process(self.push_ticker())

    def run(self, *, progress: bool = False) -> pd.DataFrame:
        """Run to the scenario's duration and return the event log."""
        self.start()
        duration = float(self.scenario.duration)
        if progress:
            from tqdm import tqdm

            steps = 100
            with tqdm(total=round(duration), unit="sim s", desc=f"{self.scenario.name} / {self.policy.name}",
                      leave=False) as bar:
                done = 0
                for k in range(1, steps + 1):
                    self.env.run(until=duration * k / steps)
                    now = round(duration * k / steps)
                    bar.update(now - done)
                    done = now
        else:
            self.env.run(until=duration)
        return self.log.to_frame(self.attrs())

    def attrs(self) -> dict[str, Any]:
        """Run-level facts for ``df.attrs`` (read by ``chatlab.metrics``)."""
        sc = self.scenario
        return {
            "scenario": sc.name,
            "description": sc.description,
            "policy": self.policy.name,
            "policy_params": dict(self.policy.params),
            "seed": self.seed,
            "source": "sim",
            "mode": sc.policy.mode,
            "duration": float(sc.duration),
            "warmup": sc.warmup,
            "operators": [a.id for a in self.agents],
            "max_chats": sc.operators.max_chats,
            "stuck_after": sc.jobs.stuck_after,
            "idle_after": sc.jobs.idle_after,
            "users": self._users,
            **sc.floor_attrs(),
        }


def run_simulation(scenario: Scenario | str, policy: str | Policy | None = None, *, seed: int | None = None,
                   progress: bool = False, policy_params: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Simulate ``scenario`` under ``policy`` (default: the scenario's) and return the event log.

    The frame has :data:`sim.eventlog.COLUMNS`; ``df.attrs`` holds scenario, policy,
    policy_params, seed, source="sim", mode, duration, operators (ids), stuck_after, ...
    The same (scenario, policy, seed) always gives the identical log.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    pol = resolve_policy(scenario, policy, policy_params)
    model = ChatModel(scenario, pol, scenario.seed if seed is None else seed)
    return model.run(progress=progress)
