"""Chat arrival times for the load test: a (non-homogeneous) Poisson process, drawn up front.

The load test is *open loop* like the simulation: chats arrive at the scenario's rate
whether or not earlier chats are finished (a closed loop of N looping users would slow
arrivals down exactly when the system is slow, hiding the queue we want to measure).  So
the arrival instants are drawn once from the seed, by Lewis-Shedler thinning of
``rate_at(t)`` (chats per scenario second), and Locust users take them from a queue.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.statemachine import ChatLabError


class BadArrivalRate(ChatLabError):
    """The scenario's arrival rate is negative, infinite or not a number somewhere."""


def peak_rate(rate_at: Callable[[float], float], duration: float, *, steps: int = 4000) -> float:
    """The largest rate on a fine grid of ``[0, duration]`` (the thinning bound's base)."""
    grid = np.linspace(0.0, duration, steps + 1)
    values = np.array([float(rate_at(float(t))) for t in grid])
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise BadArrivalRate(f"arrival rate must be finite and >= 0 over [0, {duration}] s")
    return float(values.max())


def arrival_times(rate_at: Callable[[float], float], duration: float, rng: np.random.Generator,
                  *, share: float = 1.0) -> list[float]:
    """Arrival instants (scenario seconds, increasing) in ``[0, duration)``.

    ``share`` thins the stream further, for distributed runs where each of W worker
    processes generates ``1/W`` of the load (independent thinning keeps each share Poisson).
    """
    if duration <= 0:
        return []
    bound = peak_rate(rate_at, duration) * 1.05  # margin for peaks between grid points
    if bound <= 0:
        return []
    times: list[float] = []
    t = 0.0
    while True:
        t += rng.exponential(1.0 / bound)
        if t >= duration:
            return times
        rate = float(rate_at(t))
        if rate > bound:  # a spike the grid missed: accept it, never drop arrivals silently
            bound = rate * 1.05
        if rng.random() * bound <= rate * share:
            times.append(t)
