"""Scenario time on a wall clock that runs K times faster.

A load test cannot wait a real hour for a simulated hour, so every scenario duration
(think time, handle time, job intervals and thresholds, shifts, run length) is divided by
the time-scale factor K: one scenario second lasts ``1/K`` wall seconds.  The database
keeps real timestamps; ``history.read_event_log(..., time_scale=K)`` multiplies them back.

No gevent import here: inside Locust ``time.sleep`` is already gevent's cooperative sleep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class ScaledClock:
    """``now()`` in scenario seconds since ``start``; ``sleep(s)`` waits ``s`` scenario seconds."""

    time_scale: float
    start: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError(f"time scale must be > 0, got {self.time_scale!r}")

    def now(self) -> float:
        """Scenario seconds since the run started."""
        return (time.monotonic() - self.start) * self.time_scale

    def wall(self, scenario_seconds: float) -> float:
        """How many wall seconds ``scenario_seconds`` last at this time scale."""
        return scenario_seconds / self.time_scale

    def scenario(self, wall_seconds: float) -> float:
        return wall_seconds * self.time_scale

    def sleep(self, scenario_seconds: float) -> None:
        if scenario_seconds > 0:
            time.sleep(scenario_seconds / self.time_scale)

    def sleep_until(self, scenario_time: float) -> None:
        self.sleep(scenario_time - self.now())

    def reset(self) -> None:
        self.start = time.monotonic()
