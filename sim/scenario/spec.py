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
from sim.routing import MAX_ROUTING_S, Routing


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


#: The one topic of a scenario without ``[[users.topics]]`` (no skill needed, priority 0).
DEFAULT_TOPIC = "general"
#: The one group of a scenario without ``[[operators.groups]]``.
DEFAULT_GROUP = "all"


@dataclass(frozen=True)
class Topic:
    """What a chat is about: which operators may take it (``skill``) and how urgent it is.

    ``priority`` is a class: higher is served first.  ``think_time``/``exchanges``/``patience``
    override the users' defaults for chats of this topic (``None``: the defaults).
    """

    name: str
    share: float = 1.0  # of all arrivals
    skill: str | None = None  # None: any operator may take it
    priority: int = 0
    weight: int = 1  # units of an operator's max_chats one chat of it takes
    think_time: Distribution | None = None
    exchanges: Distribution | None = None
    patience: Distribution | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "share": self.share, "priority": self.priority}
        if self.weight != 1:
            out["weight"] = self.weight
        if self.skill is not None:
            out["skill"] = self.skill
        for key in ("think_time", "exchanges", "patience"):
            value = getattr(self, key)
            if value is not None:
                out[key] = _dist_dict(value)
        return out


@dataclass(frozen=True)
class Users:
    arrivals: Arrivals
    think_time: Distribution = Exponential(30.0)  # user's time to answer an operator reply (s)
    exchanges: Distribution = Constant(3.0)  # operator replies before the user ends the chat (rounded, >= 1)
    patience: Distribution = Constant(math.inf)  # a queued user gives up after this long (s); inf = never
    topic_specs: tuple[Topic, ...] = ()  # [[users.topics]]; none: one topic of every chat
    returning: float = 0.0  # probability that a new chat comes from a user who chatted before

    @property
    def topics(self) -> tuple[Topic, ...]:
        """The topics, in file order (a scenario without ``[[users.topics]]`` has one: :data:`DEFAULT_TOPIC`)."""
        return self.topic_specs or (Topic(DEFAULT_TOPIC),)

    def topic(self, name: str) -> Topic:
        return next(t for t in self.topics if t.name == name)

    def to_dict(self) -> dict[str, Any]:
        out = {"arrivals": self.arrivals.to_dict(), "think_time": self.think_time.to_dict(),
               "exchanges": self.exchanges.to_dict(), "patience": _dist_dict(self.patience)}
        if self.topic_specs:
            out["topics"] = [t.to_dict() for t in self.topic_specs]
        if self.returning:
            out["returning"] = self.returning
        return out


@dataclass(frozen=True)
class Shift:
    """An on-shift window for some operators (0-based indexes)."""

    start: float
    end: float
    operators: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "operators": list(self.operators)}


@dataclass(frozen=True)
class Group:
    """Operators who are alike: capacity, speed, skills, shifts.  Operators ``first`` ..
    ``first + count - 1`` (0-based over the floor) belong to it."""

    name: str
    count: int
    first: int = 0
    max_chats: int = 1
    handle_time: Distribution = Exponential(60.0)
    unassign_probability: float = 0.0
    idle_probability: float = 0.0
    idle_duration: Distribution = Constant(600.0)
    skills: frozenset[str] = frozenset()
    shifts: tuple[Shift, ...] = ()  # indexes within the group

    @property
    def members(self) -> range:
        """The group's operator indexes (0-based over the floor)."""
        return range(self.first, self.first + self.count)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "max_chats": self.max_chats,
                "handle_time": self.handle_time.to_dict(), "unassign_probability": self.unassign_probability,
                "idle_probability": self.idle_probability, "idle_duration": self.idle_duration.to_dict(),
                "skills": sorted(self.skills), "shifts": [s.to_dict() for s in self.shifts]}


@dataclass(frozen=True)
class Operators:
    """The floor.  Without ``[[operators.groups]]`` every operator is alike (one group of ``count``);
    with groups, the fields here are the floor's defaults and ``count``/``shifts`` are the groups'
    together (shift indexes over the whole floor)."""

    count: int
    max_chats: int = 1
    handle_time: Distribution = Exponential(60.0)  # time to write one reply (s)
    unassign_probability: float = 0.0  # per handled message: hand the chat back instead of replying
    idle_probability: float = 0.0  # per handled message: stop responding for idle_duration first
    idle_duration: Distribution = Constant(600.0)
    shifts: tuple[Shift, ...] = ()
    group_specs: tuple[Group, ...] = ()  # [[operators.groups]]; none: the flat form
    tabs: int = 1  # concurrent assignment requests each operator's client makes (browser tabs)

    @property
    def groups(self) -> tuple[Group, ...]:
        """The groups in file order (the flat form is one group, :data:`DEFAULT_GROUP`)."""
        return self.group_specs or (Group(DEFAULT_GROUP, self.count, 0, self.max_chats, self.handle_time,
                                          self.unassign_probability, self.idle_probability, self.idle_duration,
                                          frozenset(), self.shifts),)

    def group_of(self, i: int) -> Group:
        """The group of operator ``i`` (0-based)."""
        return next(g for g in self.groups if i in g.members)

    @property
    def skills(self) -> frozenset[str]:
        """Every skill some operator has."""
        return frozenset().union(*(g.skills for g in self.groups))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"max_chats": self.max_chats, "handle_time": self.handle_time.to_dict(),
                               "unassign_probability": self.unassign_probability,
                               "idle_probability": self.idle_probability, "idle_duration": self.idle_duration.to_dict()}
        if self.tabs != 1:
            out["tabs"] = self.tabs
        if self.group_specs:
            return {**out, "groups": [g.to_dict() for g in self.group_specs]}
        return {"count": self.count, **out, "shifts": [s.to_dict() for s in self.shifts]}


@dataclass(frozen=True)
class PolicySpec:
    name: str = "exclude_last"
    mode: str = "pull"  # pull: operators ask; push: a waiting chat is offered to free operators
    fallback_after: float = 300.0  # exclude_last_fallback's T (s)
    poll_interval: float = 5.0  # how often an operator with free capacity asks again (push: re-dispatch)
    salt: int | None = None  # random policy: fixed salt; None = a fresh seeded salt per request
    relax_after: float | None = None  # skill relaxation: after this long queued, any operator may take a chat
    order: str = "priority"  # queue order: "priority" (class, then waiting time) or "sla" (deadline)
    sla_targets: tuple[tuple[int, float], ...] = ()  # order = "sla": (priority class, target s)
    sticky_for: float | None = None  # known agent: a returning user's new chat is held for its last operator (s)
    fair_limit: int | None = None  # fair distribution: at most this many assignments per operator per window
    fair_window: float = 3600.0  # ... window (s)

    @property
    def routing(self) -> Routing:
        """The routing rules every policy of this scenario applies (:class:`sim.policies.Routing`)."""
        targets = None
        if self.order == "sla":
            top = max((p for p, _ in self.sla_targets), default=-1)
            table = dict(self.sla_targets)
            targets = tuple(table.get(p, MAX_ROUTING_S) for p in range(top + 1))  # a gap: a class no topic uses
        return Routing(relax_after=self.relax_after, sla_targets=targets, sticky_for=self.sticky_for,
                       fair_limit=self.fair_limit, fair_window=self.fair_window)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "mode": self.mode, "fallback_after": self.fallback_after,
                               "poll_interval": self.poll_interval}
        if self.salt is not None:
            out["salt"] = self.salt
        if self.relax_after is not None:
            out["relax_after"] = self.relax_after
        if self.order != "priority":
            out["order"] = self.order
        if self.sla_targets:
            out["sla_targets"] = {str(p): t for p, t in self.sla_targets}
        if self.sticky_for is not None:
            out["sticky_for"] = self.sticky_for
        if self.fair_limit is not None:
            out.update(fair_limit=self.fair_limit, fair_window=self.fair_window)
        return out


@dataclass(frozen=True)
class Jobs:
    idle_detection_interval: float = 60.0  # s between idle-detection runs; 0 = off
    idle_after: float = 300.0  # an operator silent this long is idle
    stuck_check_interval: float = 300.0  # s between stuck-chat checks; 0 = off
    stuck_after: float = 1800.0  # a chat assigned this long is stuck and released
    reassign_after: float | None = None  # no-answer timeout: unanswered this long after assignment -> queue (s)
    reassign_check_interval: float = 10.0  # s between no-answer checks (with reassign_after)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"idle_detection_interval": self.idle_detection_interval, "idle_after": self.idle_after,
                               "stuck_check_interval": self.stuck_check_interval, "stuck_after": self.stuck_after}
        if self.reassign_after is not None:
            out.update(reassign_after=self.reassign_after, reassign_check_interval=self.reassign_check_interval)
        return out


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
    #: Scenario seconds at the start that every metric leaves out (the floor filling up from empty),
    #: or ``"auto"``: chosen per run by MSER-5 (``chatlab.metrics.warmup``).
    warmup: float | str = 0.0

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

    def floor_attrs(self) -> dict[str, Any]:
        """The floor as event-log ``attrs`` (operator ids are 1-based: index + 1), so metrics, reports
        and replays know each operator's group, capacity and skills and each topic's skill and class."""
        groups = self.operators.groups
        return {
            "groups": {g.name: [i + 1 for i in g.members] for g in groups},
            "operator_max_chats": {str(i + 1): g.max_chats for g in groups for i in g.members},
            "operator_skills": {str(i + 1): sorted(g.skills) for g in groups for i in g.members},
            "topics": {t.name: {"skill": t.skill, "priority": t.priority, "weight": t.weight} for t in self.users.topics},
            "routing": self.policy.routing.params,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field (defaults filled in) as plain TOML-like data; :func:`parse_scenario` round-trips it."""
        return {"name": self.name, "description": self.description, "duration": self.duration, "seed": self.seed,
                "warmup": self.warmup, "users": self.users.to_dict(), "operators": self.operators.to_dict(),
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

