"""The state of one Locust process during a load test: clock, arrival queue, counters.

Not settings (those are :class:`loadtest.settings.LoadTestSettings`, the same in every
process): what this process has done so far.  The listeners (``loadtest/listeners.py``)
create it when Locust starts and the users read it through :func:`current`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gevent.queue import Queue
from locust.exception import StopUser

from loadtest.clock import ScaledClock
from loadtest.settings import LoadTestSettings
from sim.population import Streams
from sim.scenario import Scenario

#: Never poll faster than this many wall seconds, whatever the time scale.
MIN_POLL_WALL_S = 0.02
#: Scenario seconds between a client's looks at the database for news it cannot be told
#: about (a user waiting for its answer; a worker whose held chat may get a user message).
CLIENT_POLL = 2.0


@dataclass
class Runtime:
    """Process-wide state of this Locust process (set up in ``init``/``test_start``)."""

    settings: LoadTestSettings
    scenario: Scenario
    clock: ScaledClock
    arrivals: Queue
    worker_index: int = 0
    started_at_db: str | None = None
    stopping: bool = False
    feeder: Any = None
    counters: dict[str, float] = field(default_factory=dict)
    lateness: list[float] = field(default_factory=list)
    _salt_rng: np.random.Generator | None = None
    target: Any = None  # loadtest.target.Target of an outside target; None: the lab's own SQL
    #: distributed master only: the workers that went missing mid-run (``loadtest/workerwatch.py``)
    workers_lost: list[dict[str, Any]] = field(default_factory=list)


    @classmethod
    def build(cls, settings: LoadTestSettings, worker_index: int = 0) -> Runtime:
        """Load the scenario with the simulation's own loader (same scenario, same validation)."""
        return cls(settings=settings, scenario=settings.load_scenario(), clock=ScaledClock(settings.time_scale),
                   arrivals=Queue(), worker_index=worker_index, target=settings.load_target())

    def count(self, key: str, n: float = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def salt(self) -> int:
        """The random policy's salt: the scenario's fixed one, else a fresh seeded one per request."""
        fixed = self.scenario.policy.salt
        if fixed is not None:
            return fixed
        if self._salt_rng is None:  # per worker process, from the simulation's salt stream
            self._salt_rng = Streams(self.settings.seed).worker_salt(self.worker_index)
        return int(self._salt_rng.integers(0, 2**31))

    def poll_wall(self, scenario_seconds: float) -> float:
        return max(MIN_POLL_WALL_S, scenario_seconds / self.settings.time_scale)

    @property
    def lock_namespace(self) -> int:
        """A signed 32-bit advisory-lock namespace derived from the schema name: two load tests
        on one server never claim each other's operators."""
        value = zlib.crc32(self.settings.schema.encode())
        return value - 2**32 if value >= 2**31 else value


_CURRENT: Runtime | None = None


def current() -> Runtime:
    """This process's runtime; a user started before the configuration arrived stops."""
    if _CURRENT is None:
        raise StopUser()
    return _CURRENT


def installed() -> Runtime | None:
    return _CURRENT


def install(runtime: Runtime | None) -> None:
    global _CURRENT
    _CURRENT = runtime
