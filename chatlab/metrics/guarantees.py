"""What a routing system promises its users, measured from the event log: the bounds that
detect the reported bugs of real products (``chatlab bugs``) and that ``chatlab gate`` checks.

* **capacity overshoot** — assignments that left their operator holding more than its
  ``max_chats`` units (chat weights; Chatwoot #11034, Rocket.Chat #18217);
* **FIFO violations** — an assignment made while an *older* chat the same operator could
  have taken was waiting (Chatwoot #10583).  "Could have taken", from the log and its attrs:
  queued, of the same or a higher priority class, entered the queue earlier (its place kept
  across releases; with SLA targets: an earlier deadline), its skill one the operator has
  (or relaxed), not last handled by that operator (the seed's rule), no heavier than the
  chat taken, and not held for another known agent.  An assignment of a chat held for its
  operator (known-agent routing) is that rule, never a violation;
* **longest unanswered hold** — the longest time any chat stayed with an operator without
  a reply (an ``assigned`` stay; a reply ends it; one still open ends at ``duration``;
  Chatwoot #14508);
* **offline known agents** — returning users' chats whose known agent (the last operator of
  the same user's previous chat) was offline when they wrote: how many, and how long they
  waited for their first assignment (until they ended, or ``duration``, if never) — held for an
  offline agent, they wait until the hold ends (Chatwoot #4158); and the share of returning
  chats whose first assignment went to the known agent;
* **peak share** — in every window of ``PEAK_WINDOW_S`` with at least ``PEAK_MIN_ASSIGNMENTS``
  assignments: the largest share of them one operator got, times the number of operators
  online in that window (1 = the fair share; n = one operator got everything).  The
  maximum over windows (Rocket.Chat #13134, #6802).

Every function is pure (log in, numbers out), for simulated and database logs alike.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from chatlab.metrics.episodes import _online_at, online_intervals, percentile
from chatlab.metrics.runlog import _AS, _WA, _col, in_window, prepare, run_duration, window_start
from sim.statemachine import Event

#: The peak-share window (s) and the fewest assignments a window needs to count.
PEAK_WINDOW_S = 900.0
PEAK_MIN_ASSIGNMENTS = 10


class _Floor:
    """What the attrs say about the floor: capacity, skills, each topic's class/skill/weight, routing."""

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        self.default_cap = int(attrs.get("max_chats") or 1)
        self.caps = {int(k): int(v) for k, v in (attrs.get("operator_max_chats") or {}).items()}
        self.skills = {int(k): frozenset(v) for k, v in (attrs.get("operator_skills") or {}).items()}
        self.topics: dict[str, Mapping[str, Any]] = dict(attrs.get("topics") or {})
        routing = attrs.get("routing") or {}
        self.relax = routing.get("relax_after")
        self.sticky = routing.get("sticky_for")
        targets = routing.get("sla_targets")
        self.sla = None if targets is None else [float(t) for t in targets]

    def cap(self, op: int) -> int:
        return self.caps.get(op, self.default_cap)

    def topic(self, name: Any) -> tuple[int, str | None, int]:
        spec = self.topics.get(name) if isinstance(name, str) else None
        if not spec:
            return 0, None, 1
        return int(spec.get("priority") or 0), spec.get("skill"), int(spec.get("weight") or 1)

    def key(self, priority: int, since: float) -> tuple[float, float]:
        """Queue order: (class, waiting since), or the SLA deadline (as sim.routing.Routing)."""
        if self.sla is not None:
            target = self.sla[priority] if priority < len(self.sla) else math.inf
            return (0.0, since + target)
        return (-priority, since)


class _Chat:
    __slots__ = ("id", "user", "priority", "skill", "weight", "since", "last_op", "holder", "created", "known_agent",
                 "first_assign", "ended")

    def __init__(self, chat_id: int, user: int | None, topic: tuple[int, str | None, int], t: float,
                 known_agent: int | None) -> None:
        self.id, self.user = chat_id, user
        self.priority, self.skill, self.weight = topic
        self.since, self.created = t, t
        self.last_op: int | None = None
        self.holder: int | None = None
        self.known_agent, self.first_assign = known_agent, None
        self.ended: float | None = None


def _held_for(chat: _Chat, floor: _Floor, t: float) -> int | None:
    """The known agent a never-handled chat may be held for under the run's routing (else None)."""
    if floor.sticky is None or chat.known_agent is None or chat.last_op is not None:
        return None
    return chat.known_agent if chat.created > t - float(floor.sticky) else None


def _scan(log: pd.DataFrame, floor: _Floor, start: float) -> tuple[int, int, dict[int, _Chat], list[tuple[float, int]]]:
    """One pass over the chat rows: (capacity overshoots, FIFO violations, chats, (time, op) of assigns),
    the counts and assigns from ``start`` (the metrics window) on; the state before it is replayed.

    The loop is the one sequential metric (the queue at each assign), so it reads plain Python
    lists (``None`` for missing) and local constants: at a floor day's 2.7 million rows every
    attribute lookup and ``pd.isna`` per row costs seconds.
    """
    rows = log.loc[log["chat_id"].notna()]
    cols = [rows["time"].to_numpy(dtype="float64").tolist()] + [_col(rows, c).tolist() for c in
                                                              ("chat_id", "operator_id", "event", "from_state",
                                                               "to_state", "topic", "user_id")]
    assign_ev, end_ev = Event.ASSIGN.value, Event.END.value
    chats: dict[int, _Chat] = {}
    latest_of_user: dict[int, int] = {}
    load: dict[int, int] = {}
    queue: list[tuple] = []  # the order keys of the queued chats (each ends with the chat id), sorted
    queued: dict[int, tuple] = {}
    topics: dict[Any, tuple[int, str | None, int]] = {}
    over = fifo = 0
    assigns: list[tuple[float, int]] = []
    for t, cid, op, ev, frm, to, topic, user in zip(*cols):
        cid = int(cid)
        chat = chats.get(cid)
        if chat is None:  # a new chat: its known agent is the operator of the user's previous one
            u = None if user is None else int(user)
            prev = chats.get(latest_of_user.get(u, -1)) if u is not None else None
            agent = None if prev is None else (prev.holder if prev.holder is not None else prev.last_op)
            spec = topics.get(topic)
            if spec is None:
                spec = topics[topic] = floor.topic(topic)
            chat = chats[cid] = _Chat(cid, u, spec, t, agent)
            if u is not None:
                latest_of_user[u] = cid
        if ev == assign_ev:
            o = int(op)
            load[o] = load.get(o, 0) + chat.weight
            if chat.first_assign is None:
                chat.first_assign = (t, o)
            if t >= start:
                over += load[o] > floor.cap(o)
                assigns.append((t, o))
                if queue and queue[0][-1] != cid:  # the head of the queue taken skips nothing
                    if _held_for(chat, floor, t) != o and _skipped_older(queue, chats, chat, o, t, floor):
                        fifo += 1
            chat.holder = o
        elif frm == _AS and op is not None:  # the holder lets go (reply, release, end)
            o = int(op)
            load[o] = max(0, load.get(o, 0) - chat.weight)
            chat.last_op, chat.holder = o, None
        if ev == end_ev:
            chat.ended = t
        if to == _WA:
            if cid not in queued:
                if frm != _AS:  # new, or the user wrote again: a new place (a release keeps its place)
                    chat.since = t
                key = (*floor.key(chat.priority, chat.since), cid)
                queued[cid] = key
                bisect.insort(queue, key)
        elif cid in queued:
            key = queued.pop(cid)
            del queue[bisect.bisect_left(queue, key)]
    return over, fifo, chats, assigns


def _skipped_older(queue: list[tuple], chats: dict[int, _Chat], taken: _Chat, op: int, t: float,
                   floor: _Floor) -> bool:
    """Was an older chat that ``op`` could have taken waiting when it took ``taken``?"""
    mine = (*floor.key(taken.priority, taken.since), taken.id)
    skills = floor.skills.get(op, frozenset())
    for key in queue:
        if key >= mine:
            return False
        other = chats[key[-1]]
        if other.priority < taken.priority or other.last_op == op or other.weight > taken.weight:
            continue
        if other.skill is not None and other.skill not in skills and not (
                floor.relax is not None and t - other.since >= float(floor.relax)):
            continue
        held = _held_for(other, floor, t)
        if held is not None and held != op:
            continue
        return True
    return False


def _peak_share(assigns: list[tuple[float, int]], online: dict[int, list[tuple[float, float]]],
                duration: float, start: float) -> float | None:
    if not assigns or duration <= 0:
        return None
    frame = pd.DataFrame(assigns, columns=["time", "operator_id"])
    frame["window"] = (frame["time"] // PEAK_WINDOW_S).astype(int)
    best: float | None = None
    for window, rows in frame.groupby("window"):
        if len(rows) < PEAK_MIN_ASSIGNMENTS:
            continue
        lo, hi = max(start, window * PEAK_WINDOW_S), min(duration, (window + 1) * PEAK_WINDOW_S)
        present = sum(1 for spans in online.values() if any(a < hi and b > lo for a, b in spans))
        share = rows["operator_id"].value_counts().max() / len(rows)
        ratio = float(share * max(present, 1))
        best = ratio if best is None else max(best, ratio)
    return best


def guarantee_metrics(log: pd.DataFrame, intervals: pd.DataFrame | None = None) -> dict[str, Any]:
    """The ``guarantees`` section of ``metrics.json`` (see the module docstring).

    ``intervals`` is :func:`chatlab.metrics.episodes.state_intervals` of the log when the
    caller has it already.
    """
    from chatlab.metrics.episodes import state_intervals

    log = prepare(log)
    duration, start = run_duration(log), window_start(log)
    floor = _Floor(log.attrs)
    over, fifo, chats, assigns = _scan(log, floor, start)
    iv = state_intervals(log) if intervals is None else intervals
    held = iv.loc[iv["state"] == _AS]
    longest = float((held["end"] - held["start"]).max()) if len(held) else None
    online = online_intervals(log)
    returning = [c for c in chats.values() if c.known_agent is not None and c.created >= start]
    offline = [c for c in returning if not _online_at(online.get(c.known_agent, []), c.created)]
    waits = [(c.first_assign[0] if c.first_assign else c.ended if c.ended is not None else duration) - c.created
             for c in offline]
    to_agent = sum(1 for c in returning if c.first_assign is not None and c.first_assign[1] == c.known_agent)
    first = sum(1 for c in returning if c.first_assign is not None)
    window = in_window(log)
    ev = window["event"].astype(object)
    no_answer = int(((ev == Event.STUCK_RELEASE.value) & (window["reason"].astype(object) == "no_answer")).sum())
    return {
        "capacity_overshoot": int(over),
        "fifo_violations": int(fifo),
        "fifo_violation_rate": fifo / len(assigns) if assigns else None,
        "longest_unanswered_hold_s": longest,
        "no_answer_releases": no_answer,
        "returning_chats": len(returning),
        "known_agent_share": to_agent / first if first else None,
        "offline_agent_chats": len(offline),
        "offline_agent_wait_p90_s": percentile(waits, 90) if waits else None,
        "offline_agent_wait_max_s": float(np.max(waits)) if waits else None,
        "peak_share": _peak_share(assigns, online, duration, start),
    }
