"""The state of one Locust process during a load test: clock, arrival queue, counters.

Not settings (those are :class:`loadtest.settings.LoadTestSettings`, the same in every
process): what this process has done so far.  The listeners (``loadtest/listeners.py``)
create it when Locust starts and the users read it through :func:`current`.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gevent.event import Event
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
    #: scenario t = 0 has come: the clock runs (operators on shift at 0 are already logged in)
    go: Event = field(default_factory=Event)
    operators_ready: int = 0  # Operators of this process that claimed their seat (and logged in, if on shift at 0)
    wakes: Any = None  # loadtest.wakes.Wakes of this process (the lab's own SQL only); None: clients poll
    dispatcher: Any = None  # push mode: chatlab.db.dispatcher.Dispatcher, on the master (or the only process)
    origin: Any = None  # the database's clock (datetime) at scenario t = 0
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

    @property
    def push(self) -> bool:
        """Push mode: the dispatcher offers the chats; operators never ask."""
        return self.scenario.policy.mode == "push" and self.target is None

    @property
    def notify(self) -> bool:
        """The lab's own SQL: sessions opt in to 021/022's NOTIFYs, clients wait on :attr:`wakes`."""
        return self.target is None

    def scenario_at(self, ts: Any, now: float) -> float:
        """A database timestamp as scenario time (at most ``now``; ``now`` when unknown).

        Why: a client learns of a moment (a chat given to its operator, an answer) a database
        round trip or two after it, and each wall millisecond is K scenario milliseconds; the
        model's actors start at the moment itself, so the clients count their durations from
        the database's timestamp of it, not from when they heard.  (The database's own delays —
        how fast it assigns — are not made up for: they are what is measured.)
        """
        if not isinstance(ts, datetime) or self.origin is None:  # e.g. an outside target's own types
            return now
        return min(now, (ts - self.origin).total_seconds() * self.settings.time_scale)

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
