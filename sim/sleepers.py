"""The model's sleeping pollers: when a sleeping operator's client asks again (sim/pollgrid.py).

A mixin of :class:`sim.model.ChatModel`, apart only to keep the model's module small: the pool
of sleepers, the one timer for the next tick at which one of them might get a chat, and the
login a client does at its tick when idle detection logged its present operator out.
"""

from __future__ import annotations

import math
from typing import Any

import simpy

from sim.pollgrid import at


class SleepingPollers:
    """Needs ``env``, ``system``, ``policy``, ``pool``, ``agents``, ``_keys_of`` and the timer fields
    set by :class:`sim.model.ChatModel`."""

    env: simpy.Environment
    system: Any
    policy: Any
    pool: Any
    agents: list[Any]
    _keys_of: dict[int, tuple[tuple[int, int], ...]]
    _pool_timer: simpy.Event | None
    _pool_timer_at: float

    def _candidate_keys(self, candidates: list[int]) -> list[tuple[int, int]]:
        """The pool keys (agent index, tab) of those candidates' sleeping pollers."""
        asleep, keys_of = self.pool._tick, self._keys_of
        return [key for op_id in candidates for key in keys_of[op_id] if key in asleep]

    def _pool_next(self) -> None:
        """If the queue is open and someone sleeps who might get a chat, be woken at the first such
        sleeper's next tick (an earlier one than already planned replaces it)."""
        pool, now = self.pool, self.env.now
        if not len(pool) or not self.system.queue_open(self.policy):
            return
        candidates = self.system.ask_candidates(self.policy)
        if candidates is None:
            tick = pool.due(now)
        else:
            keys = self._candidate_keys(candidates)
            tick = min([pool.tick_of(key, now) for key in keys]) if keys else None
        if tick is None or (self._pool_timer is not None and self._pool_timer_at <= tick):
            return
        self._pool_timer_at = tick
        self._pool_timer = at(self.env, tick, self._pool_tick)

    def _pool_tick(self, event: simpy.Event) -> None:
        """A sleeper's tick: if the queue is still open, the sleepers of this tick that might get a
        chat ask (in the order their timeouts would have run); then look for the next tick."""
        if event is not self._pool_timer:
            return  # replaced by an earlier one
        self._pool_timer, self._pool_timer_at = None, math.inf
        if self.system.queue_open(self.policy):
            now, pool = self.env.now, self.pool
            candidates = self.system.ask_candidates(self.policy)
            if candidates is None:
                due = pool.pop_due(now)
            else:  # the others' asks would surely get nothing: they sleep through this tick
                due = sorted((key for key in self._candidate_keys(candidates) if pool.tick_of(key, now) == now),
                             key=pool.order_of)
                pool.take(due)
            for index, tab in due:
                agent = self.agents[index]
                ev = agent.sleeping[tab]
                if not ev.triggered:
                    agent.ticked[tab] = True
                    ev.succeed()
        self._pool_next()

    def _pool_login(self, agent: Any) -> None:
        """A sleeping poller of an operator logged out while present would log it back in at its
        next tick, open queue or not: wake it there."""
        for tab in agent.poll_wakes:
            key = (agent.index, tab)
            tick = self.pool.tick_of(key, self.env.now)
            if tick is None:
                continue

            def wake(_: simpy.Event, key: tuple[int, int] = key) -> None:
                if key in self.pool and self.pool.tick_of(key, self.env.now) == self.env.now:
                    self.pool.discard(key)
                    agent = self.agents[key[0]]
                    ev = agent.sleeping[key[1]]
                    if not ev.triggered:
                        agent.ticked[key[1]] = True
                        ev.succeed()

            at(self.env, tick, wake)
