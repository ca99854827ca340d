"""Sleeping pollers: an operator's client that found the queue empty sleeps until the queue
opens, then wakes at its next poll tick — the very tick at which it would have asked anyway.

Why: at floor scale (hundreds of operators with free slots, each asking every
``poll_interval``) almost every poll finds an empty queue and does nothing, yet each costs
SimPy events and an ``assign`` call.  An ask on an empty queue has no effect at all
(``ChatSystem.assign`` returns None before looking at anything), so skipping it changes
nothing, *provided* the operator still asks at exactly the tick times it would have asked at:
``t0 + poll``, ``+ poll``, ... as SimPy adds them up (float sums, bit for bit — the assignment
times land in the event log).  :func:`next_tick` computes that sum without adding ``poll``
once per tick, and :class:`PollPool` finds, when the queue opens, the sleeping poller whose
next tick comes first.  Ties (pollers whose grids coincide, e.g. all who logged in at 0) go in
the order their timeouts would have had in SimPy's queue: a poller keeps the *rank* of its
chain of ticks, set when the chain started (:func:`chain_rank`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from itertools import count
from typing import Any


def next_tick(tick: float, step: float, target: float) -> float:
    """The first of ``tick``, ``tick + step``, ``(tick + step) + step``, ... (float additions, as
    repeated ``env.timeout(step)`` computes them) that is ``>= target``.

    Within one binade ``[2**e, 2**(e+1))`` every addition is exact when ``step`` is a multiple of
    the binade's ulp (``5.0``, ``2.5``... are), so many steps are taken at once; near a binade
    boundary, or for a step like 0.1, it adds one step at a time, exactly as SimPy does.
    """
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step!r}")
    while tick < target:
        if tick > 0:
            _, e = math.frexp(tick)  # tick in [2**(e-1), 2**e)
            top = math.ldexp(1.0, e)
            ulp = math.ldexp(1.0, e - 53)
            if step % ulp == 0.0:
                # n steps stay exact while the sum stays below the binade's top and below target
                n = int((min(target, top) - tick) // step) - 1
                if n > 0:
                    tick += n * step
        tick += step
    return tick


def chain_rank(now: float, cause: Any, step: float, n: int) -> tuple:
    """The place, among timeouts due at the same instant, of a chain of polls started at ``now``.

    In SimPy, events due at one instant run in the order they were scheduled.  A poller's next
    tick is scheduled when it resumes, and it resumes in the order of the events that woke it
    (``cause``).  A chain continuing its grid was scheduled ``step`` before; a new chain started
    by a timeout scheduled longer ago than ``step`` (a shift start, a job) therefore goes before
    the chains already on that grid, in decreasing start time, and one started by something
    scheduled later (a zero-delay wake-up) after them, in increasing start time; ``n`` (a
    counter) orders chains started at the same instant.
    """
    early = getattr(cause, "_delay", 0.0) > step
    return (0, -now, n) if early else (1, now, n)


class PollPool:
    """The sleeping pollers, by next tick.

    ``add(key, tick, rank)`` puts a poller to sleep whose next ask would be at ``tick``;
    ``discard(key)`` takes it out (it was woken by a change of its own);
    ``due(now)`` is the earliest next tick ``>= now`` among the sleepers (advancing stale ones
    along their grids) and ``pop_due(t)`` removes and returns, in rank order, every sleeper whose
    next tick is ``t``; ``tick_of`` / ``take`` do the same for chosen sleepers (the candidates of
    an operator-ordered policy).
    """

    def __init__(self, step: float) -> None:
        self.step = float(step)
        self._heap: list[tuple[float, tuple, Any]] = []  # (tick, order, key); ticks may lag _tick
        self._order: dict[Any, tuple] = {}  # key -> (rank, falling-asleep counter) of its live entry
        self._tick: dict[Any, float] = {}  # key -> its next tick (authoritative)
        self._counter = count()

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, key: Any) -> bool:
        return key in self._order

    def add(self, key: Any, tick: float, rank: tuple) -> None:
        order = (rank, next(self._counter))
        self._order[key] = order
        self._tick[key] = tick
        heapq.heappush(self._heap, (tick, order, key))

    def discard(self, key: Any) -> None:
        if self._order.pop(key, None) is not None:
            del self._tick[key]

    def order_of(self, key: Any) -> tuple:
        return self._order[key]

    def _top(self, now: float) -> tuple[float, tuple, Any] | None:
        """The heap's first live entry with its tick brought up to date and ``>= now``."""
        heap, orders, ticks, step = self._heap, self._order, self._tick, self.step
        while heap:
            tick, order, key = heap[0]
            if orders.get(key) != order:
                heapq.heappop(heap)
                continue
            real = ticks[key]
            if real < now:
                real = ticks[key] = next_tick(real, step, now)
            if real != tick:
                heapq.heapreplace(heap, (real, order, key))
                continue
            return heap[0]
        return None

    def due(self, now: float) -> float | None:
        """The earliest next tick at or after ``now``, or None when nobody sleeps."""
        top = self._top(now)
        return None if top is None else top[0]

    def tick_of(self, key: Any, now: float) -> float | None:
        """``key``'s next tick at or after ``now`` (None if it is not asleep)."""
        ticks = self._tick
        tick = ticks.get(key)
        if tick is not None and tick < now:
            tick = ticks[key] = next_tick(tick, self.step, now)
        return tick

    def pop_due(self, t: float) -> list[Any]:
        """Remove and return the sleepers whose next tick is exactly ``t`` (rank order)."""
        out = []
        while (top := self._top(t)) is not None and top[0] == t:
            heapq.heappop(self._heap)
            self.discard(top[2])
            out.append(top[2])
        return out

    def take(self, keys: list[Any]) -> None:
        """Remove these sleepers (their tick came and they ask)."""
        for key in keys:
            self.discard(key)


def at(env: Any, when: float, callback: Callable[[Any], None]) -> Any:
    """An event processed at exactly ``when`` (not ``now + (when - now)``, which may round)."""
    delay = when - env.now
    while env.now + delay < when:
        delay = math.nextafter(delay, math.inf)
    while env.now + delay > when:
        delay = math.nextafter(delay, -math.inf)
    ev = env.timeout(delay)
    ev.callbacks.append(callback)
    return ev
