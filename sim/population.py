"""Who writes, when, and how they behave: the real users of one (scenario, seed), drawn once.

Both the SimPy model (``sim/model.py``) and the Locust load test (``loadtest``) take their
users from here, so for a (scenario, seed) they see the *same* people — arrival instants,
exchanges, patience and think times — and a difference between simulation and database is
the system's, not the dice's (common random numbers).  Before this module existed the
draws were written twice and kept in step by a test.

Random streams (fixed: changing them changes every log): ``SeedSequence(seed).spawn(4)``
gives one stream per purpose — arrivals, user draws, operators (spawned once more per
operator) and the random policy's salt — so adding a draw to one purpose never shifts
another's numbers.

The arrival process is *open loop*: chats arrive at the scenario's rate whether or not
earlier chats are finished (a closed loop of N looping users would slow arrivals down
exactly when the system is slow, hiding the queue the lab measures).  Poisson arrivals are
exponential gaps at ``rate``; a rate curve is sampled by thinning at the curve's peak; a
trace replays its recorded instants.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.distributions import count_from
from sim.errors import ChatLabError
from sim.scenario.spec import DEFAULT_TOPIC

#: Stream indexes of ``SeedSequence(seed).spawn(4)``.
ARRIVALS_STREAM, USERS_STREAM, OPERATORS_STREAM, SALT_STREAM = range(4)


class BadArrivalRate(ChatLabError):
    """The scenario's arrival process has no finite upper bound (it cannot be sampled)."""


@dataclass(frozen=True)
class Arrival:
    """One real user: when it writes first (scenario s) and what it will do."""

    index: int  # 0-based arrival number (the simulation's user id - 1)
    time: float
    exchanges: int  # operator replies before it ends the chat
    patience: float  # a chat still queued this long after a message is abandoned (inf = never)
    thinks: tuple[float, ...]  # think time before each of its next messages / the end
    topic: str = DEFAULT_TOPIC  # what the chat is about (its skill and priority come from the topic)
    user: int = 0  # the real user's id (1-based); a returning user's is an earlier arrival's (0: index + 1)

    @property
    def user_id(self) -> int:
        return self.user or self.index + 1


class Streams:
    """The seeded numpy streams of one run, one per purpose (see the module docstring)."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._seqs = np.random.SeedSequence(self.seed).spawn(4)

    def generator(self, stream: int) -> np.random.Generator:
        return np.random.default_rng(self._seqs[stream])

    def operators(self, count: int) -> list[np.random.Generator]:
        """Each operator's own stream (index 0 = the first operator)."""
        return [np.random.default_rng(s) for s in self._seqs[OPERATORS_STREAM].spawn(count)]

    def worker_salt(self, worker: int) -> np.random.Generator:
        """The random policy's salts in Locust worker process ``worker`` (0, 1, ...): a child of
        the salt stream each, as concurrent operators' requests cannot follow one sequence."""
        return np.random.default_rng(self._seqs[SALT_STREAM].spawn(worker + 1)[-1])


class Population:
    """The real users of ``scenario`` for ``seed``: arrival candidates and each user's draws.

    The model consumes it step by step as SimPy advances (:meth:`candidates`,
    :meth:`draw`); the load test takes the whole window at once (:meth:`arrivals`).  Both
    consume the streams in the same order, which is what makes their users identical.
    """

    def __init__(self, scenario: Any, seed: int) -> None:
        self.scenario = scenario
        streams = Streams(seed)
        self._arrivals_rng = streams.generator(ARRIVALS_STREAM)
        self._users_rng = streams.generator(USERS_STREAM)
        self._drawn = 0
        self._users: list[int] = []  # each arrival's user id, for returning users
        self._topics = scenario.users.topics
        self._cumulative = np.cumsum([t.share for t in self._topics])

    def candidates(self) -> Iterator[tuple[float, bool]]:
        """Poisson/curve arrivals as ``(gap to the next candidate, accepted)`` pairs, forever.

        Given as gaps because that is how SimPy advances its clock (``now += gap``): the model
        and :meth:`arrivals` then add the very same floats.  A rate curve is thinned at its
        peak (a candidate is accepted with probability ``rate(t) / peak``).
        """
        arr = self.scenario.users.arrivals
        peak = float(arr.max_rate())
        if not math.isfinite(peak):
            raise BadArrivalRate(f"arrival rate of {arr.kind!r} arrivals has no finite upper bound")
        if not peak > 0:
            return
        rng, t = self._arrivals_rng, 0.0
        while True:
            gap = float(rng.exponential(1.0 / peak))
            t += gap
            yield gap, arr.kind == "poisson" or rng.random() * peak < arr.rate_at(t)

    def trace(self) -> Iterator[tuple[float, int | None]]:
        """A trace's recorded ``(time, exchanges or None)``, in time order."""
        arr = self.scenario.users.arrivals
        return zip(arr.times, arr.trace_exchanges)

    def draw(self, time: float, exchanges: int | None = None) -> Arrival:
        """The next user's draws (in arrival order): its topic (only when there are several, by
        their shares), exchanges (unless the trace fixed them), patience, then one think time per
        exchange — each from the topic's own distribution where it has one; last, with
        ``users.returning``, whether it is an earlier user again (one of them, uniformly) — drawn
        only then, so a scenario without returning users draws what it always did."""
        users, rng = self.scenario.users, self._users_rng
        topic = self._topics[0]
        if len(self._topics) > 1:
            topic = self._topics[min(int(np.searchsorted(self._cumulative, rng.random(), side="right")),
                                     len(self._topics) - 1)]
        n = exchanges if exchanges is not None else count_from((topic.exchanges or users.exchanges).sample(rng))
        patience = float((topic.patience or users.patience).sample(rng))
        think = topic.think_time or users.think_time
        thinks = tuple(float(think.sample(rng)) for _ in range(n))
        user = self._drawn + 1
        if users.returning > 0 and self._users and rng.random() < users.returning:
            user = self._users[int(rng.integers(0, len(self._users)))]
        self._users.append(user)
        arrival = Arrival(self._drawn, float(time), int(n), patience, thinks, topic.name, user)
        self._drawn += 1
        return arrival

    def arrivals(self, duration: float) -> list[Arrival]:
        """Every user arriving in ``[0, duration)``, with its draws (the load test's users)."""
        if duration <= 0:
            return []
        if self.scenario.users.arrivals.kind == "trace":
            return [self.draw(t, n) for t, n in self.trace() if t < duration]
        out, t = [], 0.0
        for gap, accepted in self.candidates():
            t += gap
            if t >= duration:
                break
            if accepted:
                out.append(self.draw(t))
        return out


def share(arrivals: list[Arrival], workers: int, worker_index: int) -> list[Arrival]:
    """The arrivals one of ``workers`` Locust worker processes plays (round robin by index)."""
    workers = max(1, int(workers))
    return [a for a in arrivals if a.index % workers == worker_index % workers]
