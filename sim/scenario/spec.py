"""The scenario as frozen objects: arrivals, users, operators, shifts, policy and jobs.

A scenario says *what world* to simulate and *which policy* by default.  The same object
drives the SimPy model (``sim/model.py``), the user population (``sim/population.py``) and the
Locust load test (``loadtest``), so the attribute names here are an interface.  Build one with
:func:`sim.scenario.load_scenario` or :func:`sim.scenario.parse_scenario` (validated).
"""

from __future__ import annotations

import copy
import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.distributions import Constant, Distribution, Exponential
from sim.errors import ScenarioError


@dataclass(frozen=True)
class Arrivals:
    """How chats arrive: ``poisson`` (constant rate), ``curve`` (piecewise-linear rate), ``trace`` (CSV)."""

    kind: str = "poisson"
    rate: float = 0.0  # poisson: chats per second (before ``scale``)
    points: tuple[tuple[float, float], ...] = ()  # curve: (time s, chats/s), linear in between
    path: str | None = None  # trace: CSV file with a ``time`` column (absolute after loading)
    scale: float = 1.0  # multiplies the rate (poisson/curve): a load factor for sweeps
    times: tuple[float, ...] = field(default=(), repr=False)  # trace: arrival times, sorted
    trace_exchanges: tuple[int | None, ...] = field(default=(), repr=False)  # trace: optional per-chat counts

    def rate_at(self, t: float) -> float:
        """Arrivals per second at scenario time ``t``."""
        if self.kind == "poisson":
            return self.rate * self.scale
        if self.kind == "curve":
            return _interp(self.points, t) * self.scale
        # trace: arrivals in the 60 s bin around t, per second
        lo = math.floor(t / 60.0) * 60.0
        return (bisect_left(self.times, lo + 60.0) - bisect_left(self.times, lo)) / 60.0

    def max_rate(self) -> float:
        """An upper bound of :meth:`rate_at` (the thinning envelope)."""
        if self.kind == "poisson":
            return self.rate * self.scale
        if self.kind == "curve":
            return max(r for _, r in self.points) * self.scale
        return math.inf

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "poisson":
            return {"kind": "poisson", "rate": self.rate, "scale": self.scale}
        if self.kind == "curve":
            return {"kind": "curve", "points": [list(p) for p in self.points], "scale": self.scale}
        return {"kind": "trace", "path": self.path}


def _interp(points: tuple[tuple[float, float], ...], t: float) -> float:
    """Piecewise-linear through ``points``, constant beyond the first and last point."""
    times = [p[0] for p in points]
    i = bisect_right(times, t)
    if i == 0:
        return points[0][1]
    if i == len(points):
        return points[-1][1]
    (t0, r0), (t1, r1) = points[i - 1], points[i]
    return r0 + (r1 - r0) * (t - t0) / (t1 - t0)


@dataclass(frozen=True)
class Users:
    arrivals: Arrivals
    think_time: Distribution = Exponential(30.0)  # user's time to answer an operator reply (s)
    exchanges: Distribution = Constant(3.0)  # operator replies before the user ends the chat (rounded, >= 1)
    patience: Distribution = Constant(math.inf)  # a queued user gives up after this long (s); inf = never

    def to_dict(self) -> dict[str, Any]:
        return {"arrivals": self.arrivals.to_dict(), "think_time": self.think_time.to_dict(),
                "exchanges": self.exchanges.to_dict(), "patience": _dist_dict(self.patience)}


@dataclass(frozen=True)
class Shift:
    """An on-shift window for some operators (0-based indexes)."""

    start: float
    end: float
    operators: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "operators": list(self.operators)}


@dataclass(frozen=True)
class Operators:
    count: int
    max_chats: int = 1
    handle_time: Distribution = Exponential(60.0)  # time to write one reply (s)
    unassign_probability: float = 0.0  # per handled message: hand the chat back instead of replying
    idle_probability: float = 0.0  # per handled message: stop responding for idle_duration first
    idle_duration: Distribution = Constant(600.0)
    shifts: tuple[Shift, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "max_chats": self.max_chats, "handle_time": self.handle_time.to_dict(),
                "unassign_probability": self.unassign_probability, "idle_probability": self.idle_probability,
                "idle_duration": self.idle_duration.to_dict(), "shifts": [s.to_dict() for s in self.shifts]}


@dataclass(frozen=True)
class PolicySpec:
    name: str = "exclude_last"
    mode: str = "pull"  # pull: operators ask; push: a waiting chat is offered to free operators
    fallback_after: float = 300.0  # exclude_last_fallback's T (s)
    poll_interval: float = 5.0  # how often an operator with free capacity asks again (push: re-dispatch)
    salt: int | None = None  # random policy: fixed salt; None = a fresh seeded salt per request

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "mode": self.mode, "fallback_after": self.fallback_after,
                               "poll_interval": self.poll_interval}
        if self.salt is not None:
            out["salt"] = self.salt
        return out


@dataclass(frozen=True)
class Jobs:
    idle_detection_interval: float = 60.0  # s between idle-detection runs; 0 = off
    idle_after: float = 300.0  # an operator silent this long is idle
    stuck_check_interval: float = 300.0  # s between stuck-chat checks; 0 = off
    stuck_after: float = 1800.0  # a chat assigned this long is stuck and released

    def to_dict(self) -> dict[str, Any]:
        return {"idle_detection_interval": self.idle_detection_interval, "idle_after": self.idle_after,
                "stuck_check_interval": self.stuck_check_interval, "stuck_after": self.stuck_after}


@dataclass(frozen=True)
class Scenario:
    """A validated scenario.  Build with :func:`load_scenario` / :func:`parse_scenario`."""

    name: str
    description: str
    duration: float  # scenario seconds
    seed: int
    users: Users
    operators: Operators
    policy: PolicySpec = PolicySpec()
    jobs: Jobs = Jobs()
    source: str = field(default="<dict>", compare=False)  # file it came from (for error messages)

    def rate_at(self, t: float) -> float:
        """Chat arrivals per second at scenario time ``t``."""
        return self.users.arrivals.rate_at(t)

    def operator_shifts(self, i: int) -> list[tuple[float, float]]:
        """On-shift windows of operator ``i`` (0-based), merged, clipped to ``[0, duration]``.

        Without shifts, or when no shift names the operator, it works the whole run.
        """
        if not 0 <= i < self.operators.count:
            raise ScenarioError(self.source, "operators", f"an operator index in 0..{self.operators.count - 1}, got {i}")
        own = sorted((s.start, s.end) for s in self.operators.shifts if i in s.operators)
        if not own:
            return [(0.0, float(self.duration))]
        merged: list[tuple[float, float]] = []
        for start, end in own:
            start, end = max(0.0, start), min(float(self.duration), end)
            if end <= start:
                continue
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def to_dict(self) -> dict[str, Any]:
        """Every field (defaults filled in) as plain TOML-like data; :func:`parse_scenario` round-trips it."""
        return {"name": self.name, "description": self.description, "duration": self.duration, "seed": self.seed,
                "users": self.users.to_dict(), "operators": self.operators.to_dict(),
                "policy": self.policy.to_dict(), "jobs": self.jobs.to_dict()}

    def with_overrides(self, changes: Mapping[str, Any]) -> "Scenario":
        """A re-validated copy with dotted fields replaced, e.g. ``{"operators.count": 4, "duration": 600}``.

        A distribution can be replaced whole (``{"operators.handle_time": 60}`` = constant)
        or by one parameter (``{"operators.handle_time.mean": 60}``).
        """
        data = self.to_dict()
        label = f"{self.source} (overrides: {', '.join(f'{k}={v!r}' for k, v in changes.items())})"
        for dotted, value in changes.items():
            parts = str(dotted).split(".")
            if not all(parts):
                raise ScenarioError(label, str(dotted), "a dotted field name like operators.count")
            node: Any = data
            for depth, key in enumerate(parts[:-1]):
                child = node.setdefault(key, {})  # an unknown section is rejected by validation below
                if not isinstance(child, dict):
                    raise ScenarioError(label, ".".join(parts[: depth + 1]),
                                        f"a table to override {dotted!r} inside; it is the value {child!r}")
                node = child
            node[parts[-1]] = copy.deepcopy(value)
            if parts[-2:] in (["arrivals", "rate"], ["arrivals", "points"], ["arrivals", "path"]):
                # switching the arrival process: the given key decides the kind
                node["kind"] = {"rate": "poisson", "points": "curve", "path": "trace"}[parts[-1]]
                for other in {"rate", "points", "path"} - {parts[-1]}:
                    node.pop(other, None)
                if parts[-1] == "path":
                    node.pop("scale", None)
        from sim.scenario.reader import parse_scenario  # at call time: the reader builds these objects

        base = Path(self.source).parent if self.source != "<dict>" else None
        return parse_scenario(data, source=label, base_dir=base, default_name=self.name)


def _dist_dict(d: Distribution) -> Any:
    if isinstance(d, Constant) and math.isinf(d.value):
        return math.inf
    return d.to_dict()

