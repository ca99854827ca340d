"""The load test's real users: exactly the simulation's arrivals and user draws.

The load test is *open loop* like the simulation: chats arrive at the scenario's rate
whether or not earlier chats are finished (a closed loop of N looping users would slow
arrivals down exactly when the system is slow, hiding the queue we want to measure).

More than "the same rate": for a (scenario, seed) this module reproduces the *same*
users the simulation creates — arrival instants, number of exchanges, patience and think
times — from the same numpy streams in the same order as ``sim.model.ChatModel``
(``arrivals`` and ``_start_user``).  The comparison sim vs. database then sees common
random numbers on the user side, so a difference is the system's, not the dice's.
``tests/test_loadtest_units.py`` checks the replica against a real simulation run, so a
change in the model's draws cannot silently break it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.distributions import count_from
from sim.errors import ChatLabError

#: ``sim.model``'s stream indexes of ``SeedSequence(seed).spawn(4)``.
ARRIVALS_STREAM, USERS_STREAM, OPERATORS_STREAM, SALT_STREAM = range(4)


class BadArrivalRate(ChatLabError):
    """The scenario's arrival process cannot be replayed (an unbounded rate)."""


@dataclass(frozen=True)
class Arrival:
    """One real user: when it writes first (scenario s) and what it will do."""

    index: int  # 0-based arrival number (the simulation's user id - 1)
    time: float
    exchanges: int
    patience: float
    thinks: tuple[float, ...]  # think time before each of its next messages / the end


def streams(seed: int) -> list[np.random.SeedSequence]:
    """The simulation's four seed streams for ``seed``."""
    return np.random.SeedSequence(int(seed)).spawn(4)


def operator_rng(seed: int, operator_count: int, index: int) -> np.random.Generator:
    """Operator ``index``'s own stream, as the simulation seeds it (its draw order differs here)."""
    return np.random.default_rng(streams(seed)[OPERATORS_STREAM].spawn(operator_count)[index])


def arrival_instants(scenario: Any, seed: int, duration: float) -> list[tuple[float, int | None]]:
    """(time, exchanges from a trace or None) of every arrival before ``duration``."""
    arr = scenario.users.arrivals
    if arr.kind == "trace":
        return [(float(t), n) for t, n in zip(arr.times, arr.trace_exchanges) if t < duration]
    peak = float(arr.max_rate())
    if not np.isfinite(peak):
        raise BadArrivalRate(f"arrival rate of {arr.kind!r} arrivals has no finite upper bound")
    if not peak > 0 or duration <= 0:
        return []
    rng = np.random.default_rng(streams(seed)[ARRIVALS_STREAM])
    out: list[tuple[float, int | None]] = []
    t = 0.0
    while True:
        t += float(rng.exponential(1.0 / peak))
        if t >= duration:
            return out
        if arr.kind == "poisson" or rng.random() * peak < arr.rate_at(t):  # thinning, as the model
            out.append((t, None))


def scenario_arrivals(scenario: Any, seed: int, duration: float) -> list[Arrival]:
    """Every real user of the scenario window ``[0, duration)``, with the simulation's draws."""
    users = scenario.users
    rng = np.random.default_rng(streams(seed)[USERS_STREAM])
    out = []
    for index, (t, fixed) in enumerate(arrival_instants(scenario, seed, duration)):
        n = fixed if fixed is not None else count_from(users.exchanges.sample(rng))
        patience = float(users.patience.sample(rng))
        thinks = tuple(float(users.think_time.sample(rng)) for _ in range(n))
        out.append(Arrival(index, t, int(n), patience, thinks))
    return out


def share(arrivals: list[Arrival], workers: int, worker_index: int) -> list[Arrival]:
    """The arrivals one of ``workers`` Locust worker processes plays (round robin by index)."""
    workers = max(1, int(workers))
    return [a for a in arrivals if a.index % workers == worker_index % workers]
