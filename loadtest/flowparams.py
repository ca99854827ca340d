"""What the Locust flows need from a scenario, in one flat object.

The simulation's :class:`sim.scenario.Scenario` is the source; :func:`from_scenario` is the
only place that knows its layout, so the locustfile, the planner and the runner never
reach into scenario sections themselves.  All times are scenario seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class Sampler(Protocol):
    """A distribution from the scenario file (``sim.distributions`` objects)."""

    @property
    def mean(self) -> float: ...

    def sample(self, rng: np.random.Generator) -> float: ...


@dataclass(frozen=True)
class FlowParams:
    name: str
    duration: float
    seed: int
    rate_at: Callable[[float], float]  # chats per scenario second
    #: trace scenarios: the recorded arrival instants (replayed as they are, not re-drawn)
    trace_times: tuple[float, ...]
    trace_exchanges: tuple[int | None, ...]
    # users
    think_time: Sampler
    exchanges: Sampler
    patience: Sampler
    # operators
    operator_count: int
    max_chats: int
    handle_time: Sampler
    unassign_probability: float
    idle_probability: float
    idle_duration: Sampler
    shifts: tuple[tuple[tuple[float, float], ...], ...]  # per operator (index 0 = operator id 1)
    # policy
    policy: str
    mode: str
    fallback_after: float
    poll_interval: float
    salt: int | None
    # background jobs (interval 0 = off)
    idle_detection_interval: float
    idle_after: float
    stuck_check_interval: float
    stuck_after: float

    def conversation_estimate(self) -> float:
        """A generous mean conversation length (s): exchanges x (wait + handle + think).

        Only sizes the real-user pool (Little's law); the wait term is a guess of up to two
        minutes per message.  If it is too small the run says so (late arrivals note).
        """
        patience = self.patience.mean
        wait = min(patience, 120.0) if math.isfinite(patience) else 120.0
        return max(1.0, self.exchanges.mean) * (wait + self.handle_time.mean + self.think_time.mean)


def from_scenario(scenario: Any) -> FlowParams:
    """Flatten a :class:`sim.scenario.Scenario` for the load test."""
    pol, users, ops, jobs = scenario.policy, scenario.users, scenario.operators, scenario.jobs
    arrivals = users.arrivals
    trace = arrivals.kind == "trace"
    return FlowParams(
        name=str(scenario.name),
        duration=float(scenario.duration),
        seed=int(scenario.seed),
        rate_at=scenario.rate_at,
        trace_times=tuple(float(t) for t in arrivals.times) if trace else (),
        trace_exchanges=tuple(arrivals.trace_exchanges) if trace else (),
        think_time=users.think_time,
        exchanges=users.exchanges,
        patience=users.patience,
        operator_count=int(ops.count),
        max_chats=int(ops.max_chats),
        handle_time=ops.handle_time,
        unassign_probability=float(ops.unassign_probability),
        idle_probability=float(ops.idle_probability),
        idle_duration=ops.idle_duration,
        shifts=tuple(tuple((float(a), float(b)) for a, b in scenario.operator_shifts(i)) for i in range(int(ops.count))),
        policy=str(pol.name),
        mode=str(pol.mode),
        fallback_after=float(pol.fallback_after),
        poll_interval=float(pol.poll_interval),
        salt=None if pol.salt is None else int(pol.salt),
        idle_detection_interval=float(jobs.idle_detection_interval),
        idle_after=float(jobs.idle_after),
        stuck_check_interval=float(jobs.stuck_check_interval),
        stuck_after=float(jobs.stuck_after),
    )


def with_duration(scenario: Any, duration: float) -> Any:
    """The scenario cut to ``duration`` scenario seconds (re-validated by the scenario itself)."""
    if float(duration) == float(scenario.duration):
        return scenario
    return scenario.with_overrides({"duration": float(duration)})
