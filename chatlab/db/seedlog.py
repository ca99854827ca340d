"""The seed's tables -> the lab's event log (``sim/eventlog.py``), so one metrics module judges any history.

Why rebuild the log instead of reading ``chat_events``: an outside system (a team's own
production database, the ``seed_*`` targets) has only the seed's four tables.  Each row
says what happened and when:

==============================  =============================================================
row                             event
==============================  =============================================================
a ``real_user`` message         ``user_message`` (the chat's first one opens it)
an ``operator`` message         ``operator_reply`` by its sender
``chat_assignments.assigned_at``  ``assign`` to that operator
``released_at`` by reason       ``unassign`` (``unassign``, ``operator_offline``),
                                ``idle_release`` (``idle``), ``stuck_release`` (any other
                                reason but ``operator_reply``/``end``, which the message row
                                and the chat's end already say)
an inactive chat's ``updated_at``  ``end``: ``abandoned`` when it was waiting for an operator,
                                else ``resolved``
==============================  =============================================================

States come from walking each chat's rows through :func:`sim.statemachine.next_state`
(legacy transitions allowed: a pre-fix system re-assigns replied chats, and that is what
the repeat metrics must see).  A row the machine cannot take (inconsistent data) is
dropped and counted in ``attrs["dropped_rows"]``.  The log has no presence rows: the tables
do not record log-ins, so every operator counts as online for the whole period.

Ids that are all integers are kept; text ids (UUIDs) are numbered 1.. in order of first
appearance, and ``attrs["operator_names"]`` maps the numbers back.  Time is seconds since
``origin`` times ``time_scale`` (a lab load test records at K times real speed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from chatlab.db.seedtables import SeedTables
from sim.eventlog import from_records, validate
from sim.statemachine import Event, State, is_legal, next_state

#: chat_assignments.release_reason -> the event it is (None: another row already says it)
RELEASE_EVENTS: dict[str, Event | None] = {
    "operator_reply": None,
    "end": None,
    "unassign": Event.UNASSIGN,
    "operator_offline": Event.UNASSIGN,
    "idle": Event.IDLE_RELEASE,
}
# ties at one instant: the order the system must have done them in
_ORDER = {Event.USER_MESSAGE: 0, Event.ASSIGN: 1, Event.OPERATOR_REPLY: 2, Event.UNASSIGN: 2,
          Event.IDLE_RELEASE: 2, Event.STUCK_RELEASE: 2, Event.END: 3}


@dataclass(frozen=True)
class Numbering:
    """Text ids -> the log's integers (identity when every id is an integer)."""

    ids: dict[str, int]

    @classmethod
    def of(cls, values: Iterable[str]) -> Numbering:
        seen: dict[str, None] = {}
        for v in values:
            if isinstance(v, str) and v not in seen:
                seen[v] = None
        keys = list(seen)
        if keys and all(k.lstrip("-").isdigit() for k in keys):
            return cls({k: int(k) for k in keys})
        return cls({k: i + 1 for i, k in enumerate(keys)})

    def __call__(self, value: object) -> int | None:
        return self.ids.get(value) if isinstance(value, str) else None


def period_of(tables: SeedTables) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First chat opened .. last row written (the history's own extent)."""
    stamps = [tables.chats["created_at"], tables.chats["updated_at"], tables.messages["created_at"],
              tables.chat_assignments["assigned_at"], tables.chat_assignments["released_at"]]
    both = pd.concat([s.dropna() for s in stamps])
    return both.min(), both.max()


def select_period(tables: SeedTables, since: pd.Timestamp | None, until: pd.Timestamp | None) -> SeedTables:
    """The chats opened in ``[since, until)`` and their rows (rows after ``until`` are cut off)."""
    chats = tables.chats
    keep = pd.Series(True, index=chats.index)
    if since is not None:
        keep &= chats["created_at"] >= since
    if until is not None:
        keep &= chats["created_at"] < until
    chats = chats[keep]
    ids = set(chats["id"])
    msgs = tables.messages[tables.messages["chat_id"].isin(ids)]
    holds = tables.chat_assignments[tables.chat_assignments["chat_id"].isin(ids)]
    if until is not None:
        msgs = msgs[msgs["created_at"] < until]
        holds = holds[holds["assigned_at"] < until].copy()
        late = holds["released_at"] >= until
        holds.loc[late, ["released_at", "release_reason"]] = [pd.NaT, None]
        chats = chats.copy()
        chats.loc[chats["updated_at"] >= until, "is_active"] = True  # ended after the period: still open in it
    return SeedTables(tables.operators, chats, msgs, holds, tables.source)


def to_event_log(tables: SeedTables, *, origin: pd.Timestamp, time_scale: float = 1.0,
                 duration: float | None = None, operator_numbers: dict[str, int] | None = None,
                 user_numbers: dict[str, int] | None = None) -> pd.DataFrame:
    """The history as the lab's typed event log (see the module docstring).

    ``operator_numbers`` / ``user_numbers``: the ids to give known text ids (a load test of a
    UUID target knows which UUID played operator *n*); others are numbered as usual.
    """
    ops = Numbering.of([*tables.operators["id"], *tables.chat_assignments["operator_id"].dropna()])
    chat_no = Numbering.of(tables.chats.sort_values(["created_at", "id"])["id"])
    user_no = Numbering.of(tables.chats.sort_values(["created_at", "id"])["real_user_id"].dropna())
    if operator_numbers:
        ops = Numbering({k: operator_numbers.get(k, 10**9 + v) for k, v in ops.ids.items()})
    if user_numbers:
        user_no = Numbering({k: user_numbers.get(k, 10**9 + v) for k, v in user_no.ids.items()})

    def secs(ts: pd.Series) -> pd.Series:
        return (ts - origin).dt.total_seconds() * float(time_scale)

    raw: list[tuple[float, int, int, Event, int | None, str | None]] = []  # (t, order, chat, event, operator, reason)
    m = tables.messages
    mt = secs(m["created_at"])
    for t, chat, kind, sender in zip(mt, m["chat_id"], m["sender_type"], m["sender_id"]):
        c = chat_no(chat)
        if c is None:
            continue
        if kind == "real_user":
            raw.append((t, 0, c, Event.USER_MESSAGE, None, None))
        else:
            raw.append((t, 2, c, Event.OPERATOR_REPLY, ops(sender), None))
    a = tables.chat_assignments
    at, rt = secs(a["assigned_at"]), secs(a["released_at"])
    for t0, t1, chat, op, why in zip(at, rt, a["chat_id"], a["operator_id"], a["release_reason"]):
        c = chat_no(chat)
        if c is None:
            continue
        raw.append((t0, 1, c, Event.ASSIGN, ops(op), None))
        if pd.notna(t1):
            reason = None if pd.isna(why) else str(why)
            event = RELEASE_EVENTS.get(reason or "", Event.STUCK_RELEASE)
            if event is not None:
                raw.append((t1, 2, c, event, ops(op),
                            reason if event is not Event.IDLE_RELEASE else "idle"))
    ch = tables.chats
    for t, chat, active in zip(secs(ch["updated_at"]), ch["id"], ch["is_active"]):
        if not active:
            raw.append((t, 3, chat_no(chat), Event.END, None, None))
    raw.sort(key=lambda r: (r[2], r[0], r[1]))

    topic = dict(zip(map(chat_no, ch["id"]), ch["topic"])) if "topic" in ch.columns else {}
    user = dict(zip(map(chat_no, ch["id"]), map(user_no, ch["real_user_id"])))
    rows: list[tuple] = []
    dropped = 0
    state: State | None = None
    current = None
    holder: int | None = None  # who holds the chat now (an end while held is the holder's row)
    for t, _, c, event, op, reason in raw:
        if c != current:
            current, state, holder = c, None, None
        if state is State.COMPLETED:
            dropped += 1
            continue
        if state is None:  # the chat opens with its first message (or, if that is missing, its first row)
            rows.append((t, c, None, Event.USER_MESSAGE.value, None, State.WAITING_ASSIGNMENT.value, None,
                         topic.get(c), user.get(c)))
            state = State.WAITING_ASSIGNMENT
            if event is Event.USER_MESSAGE:
                continue
        if event is Event.END:
            reason = "abandoned" if state is State.WAITING_ASSIGNMENT else "resolved"
            op = holder
        if not is_legal(state, event, legacy=True):
            dropped += 1
            continue
        new = next_state(state, event, legacy=True)
        rows.append((t, c, op if event is not Event.USER_MESSAGE else None, event.value, state.value, new.value,
                     reason, topic.get(c), user.get(c)))
        state = new
        holder = op if event is Event.ASSIGN else (holder if event is Event.USER_MESSAGE else None)
    names = {str(n): key for key, n in ops.ids.items()}
    end = duration if duration is not None else max((r[0] for r in rows), default=0.0)
    attrs = {"source": "history", "history": tables.source, "duration": float(end), "time_scale": float(time_scale),
             "operators": sorted(ops.ids.values()), "operator_names": names, "dropped_rows": dropped}
    if "max_chats" in tables.operators.columns:
        caps = {str(ops(k)): int(v) for k, v in zip(tables.operators["id"], tables.operators["max_chats"])
                if pd.notna(v) and ops(k) is not None}
        attrs["operator_max_chats"] = caps
    return validate(from_records(rows, attrs))


def integrity(tables: SeedTables) -> dict[str, int]:
    """The load test's history checks on the seed's tables alone (the lab's ``integrity`` query's twin):
    ``assignments`` (rows), ``double_assigned`` (pairs of holds of one chat that overlap in time),
    ``over_capacity`` (holds that began while the operator held more than ``max_chats`` chats;
    0 when the table has no ``max_chats``)."""
    a = tables.chat_assignments.copy()
    a["end"] = a["released_at"].fillna(pd.Timestamp.max.tz_localize("UTC"))
    double = 0
    for _, g in a.sort_values(["chat_id", "assigned_at"]).groupby("chat_id", sort=False):
        starts, ends = g["assigned_at"].to_numpy(), g["end"].to_numpy()
        for i in range(1, len(starts)):
            double += int((ends[:i] > starts[i]).sum())
    over = 0
    if "max_chats" in tables.operators.columns:
        caps = dict(zip(tables.operators["id"], tables.operators["max_chats"]))
        for op, g in a.groupby("operator_id"):
            cap = caps.get(op)
            if cap is None or pd.isna(cap):
                continue
            starts, ends = g["assigned_at"].to_numpy(), g["end"].to_numpy()
            for s in starts:
                if int(((starts <= s) & (ends > s)).sum()) > int(cap):
                    over += 1
    return {"assignments": int(len(a)), "double_assigned": double, "over_capacity": over}
