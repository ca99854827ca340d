"""Reading a floor: ``[[operators.groups]]``, ``[[users.topics]]`` and the routing rules of ``[policy]``.

The flat form (``operators.count`` and no topics) stays valid and is one group and one topic;
a scenario uses either ``count`` and ``shifts`` at ``[operators]`` or groups, not both.  Every
mistake is a :class:`~sim.errors.ScenarioError` naming the file, the field and what was
expected — an unknown skill on a topic, a group with ``count = 0``, shares that do not sum to
1, a priority that is not an integer, an SLA order without a target for some topic's class.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import TYPE_CHECKING

from sim.distributions import Discrete, Distribution
from sim.records import MAX_NAME, MAX_PRIORITY, MAX_WEIGHT  # the system's limits (the database's CHECKs: migration 019)
from sim.scenario.spec import Group, Operators, Shift, Topic, Users

if TYPE_CHECKING:
    from sim.scenario.reader import _Table

GROUP_KEYS = ("name", "count", "max_chats", "handle_time", "speed", "skills", "shifts", "unassign_probability",
              "idle_probability", "idle_duration")
TOPIC_KEYS = ("name", "share", "skill", "priority", "weight", "think_time", "exchanges", "patience")
#: Shares may miss 1 by this much (decimal fractions in a file are not exact in binary).
SHARE_TOLERANCE = 1e-6


def _array(parent: _Table, key: str, what: str) -> list:
    raw = parent.data.get(key, [])
    if not isinstance(raw, list) or not raw or not all(isinstance(x, dict) for x in raw):
        raise parent.error(key, f"a non-empty array of tables [[{parent.key(key)}]] with keys {what}; got {raw!r}")
    return raw


def _name(t: _Table, key: str, default: str | None = None, *, word: bool = False) -> str:
    """A name; ``word``: letters, digits, ``_`` and ``-`` only (it becomes part of metric keys)."""
    value = t.text(key, default)
    if not value.strip() or len(value) > MAX_NAME or (word and not re.fullmatch(r"[A-Za-z0-9_-]+", value)):
        what = "letters, digits, '_' or '-'" if word else "text"
        raise t.error(key, f"a non-empty name of at most {MAX_NAME} characters ({what}), got {value!r}")
    return value


def _scaled(dist: Distribution, speed: float) -> Distribution:
    """``dist`` for an operator ``speed`` times as fast: every duration divided by ``speed``."""
    if isinstance(dist, Discrete):
        return dist.scaled(1 / speed)
    fields = {f.name: getattr(dist, f.name) / speed for f in dataclasses.fields(dist)}  # type: ignore[arg-type]
    return dataclasses.replace(dist, **fields)  # type: ignore[type-var]


def read_groups(ops: _Table, floor: Operators, read_shifts) -> Operators:  # noqa: ANN001
    """The floor with its groups (``floor`` holds the defaults read from ``[operators]``)."""
    from sim.scenario.reader import MAX_OPERATORS, _Table

    if ops.has("count") or ops.has("shifts"):
        raise ops.error("groups", "either [[operators.groups]] or operators.count/operators.shifts, not both")
    groups: list[Group] = []
    first = 0
    for i, raw in enumerate(_array(ops, "groups", ", ".join(GROUP_KEYS))):
        t = _Table(ops.file, ops.key(f"groups[{i}]"), raw, GROUP_KEYS)
        name = _name(t, "name", word=True)
        if any(g.name == name for g in groups):
            raise t.error("name", f"a name no other group has; {name!r} is taken")
        count = t.integer("count", None, minimum=1, limit=MAX_OPERATORS)
        if t.has("speed") and t.has("handle_time"):
            raise t.error("speed", "either speed (a factor on the floor's handle_time) or handle_time, not both")
        handle = t.dist("handle_time", floor.handle_time)
        if t.has("speed"):
            handle = _scaled(floor.handle_time, t.number("speed", None, strict=True))
        skills = t.data.get("skills", [])
        if not isinstance(skills, list) or not all(isinstance(s, str) and s.strip() and len(s) <= MAX_NAME
                                                   for s in skills):
            raise t.error("skills", f"a list of skill names (non-empty text, at most {MAX_NAME} characters); got {skills!r}")
        groups.append(Group(
            name=name, count=count, first=first, max_chats=t.integer("max_chats", floor.max_chats, minimum=1),
            handle_time=handle,
            unassign_probability=t.number("unassign_probability", floor.unassign_probability, maximum=1.0),
            idle_probability=t.number("idle_probability", floor.idle_probability, maximum=1.0),
            idle_duration=t.dist("idle_duration", floor.idle_duration), skills=frozenset(skills),
            shifts=read_shifts(t, count)))
        first += count
    shifts = tuple(Shift(s.start, s.end, tuple(g.first + k for k in s.operators)) for g in groups for s in g.shifts)
    return dataclasses.replace(floor, count=first, shifts=shifts, group_specs=tuple(groups))


def read_topics(users_t: _Table, users: Users, skills: frozenset[str]) -> Users:
    """The users with their topics; every topic's skill must be one some group has."""
    from sim.scenario.reader import _Table, exchanges_dist

    topics: list[Topic] = []
    for i, raw in enumerate(_array(users_t, "topics", ", ".join(TOPIC_KEYS))):
        t = _Table(users_t.file, users_t.key(f"topics[{i}]"), raw, TOPIC_KEYS)
        name = _name(t, "name", word=True)
        if any(x.name == name for x in topics):
            raise t.error("name", f"a name no other topic has; {name!r} is taken")
        skill = _name(t, "skill") if t.has("skill") else None
        if skill is not None and skill not in skills:
            known = ", ".join(sorted(skills)) or "none: no group lists skills"
            raise t.error("skill", f"a skill some operator group has ({known}); got {skill!r}")
        priority = t.data.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
            raise t.error("priority", f"an integer priority class from 0 to {MAX_PRIORITY} (higher is served first); "
                                      f"got {priority!r}")
        weight = t.data.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
            raise t.error("weight", f"an integer from 1 to {MAX_WEIGHT} (units of an operator's max_chats a chat of "
                                    f"this topic takes); got {weight!r}")
        topics.append(Topic(
            name=name, share=t.number("share", None, maximum=1.0), skill=skill, priority=priority, weight=weight,
            think_time=t.dist("think_time", None) if t.has("think_time") else None,  # type: ignore[arg-type]
            exchanges=exchanges_dist(t, "exchanges", None) if t.has("exchanges") else None,  # type: ignore[arg-type]
            patience=t.dist("patience", None, allow_inf=True) if t.has("patience") else None))  # type: ignore[arg-type]
    total = math.fsum(x.share for x in topics)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise users_t.error("topics", f"shares that sum to 1 (each topic's share of the arrivals); they sum to {total:g}")
    return dataclasses.replace(users, topic_specs=tuple(topics))


def read_sla_targets(pol: _Table, priorities: set[int]) -> tuple[tuple[int, float], ...]:
    """``[policy.sla_targets]``: seconds per priority class, one for every class a topic uses."""
    raw = pol.data.get("sla_targets")
    if not isinstance(raw, dict) or not raw:
        raise pol.error("sla_targets", "a table of seconds per priority class, e.g. [policy.sla_targets] 0 = 300, "
                                       "1 = 60 (required with order = \"sla\")")
    out: dict[int, float] = {}
    for key, value in raw.items():
        if not (isinstance(key, str) and key.isdigit()):
            raise pol.error(f"sla_targets.{key}", "a priority class (an integer >= 0) as the key")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
            raise pol.error(f"sla_targets.{key}", f"a target in seconds >= 0, got {value!r}")
        out[int(key)] = float(value)
    missing = sorted(priorities - set(out))
    if missing:
        raise pol.error("sla_targets", f"a target for every priority class the topics use; missing {missing}")
    return tuple(sorted(out.items()))
