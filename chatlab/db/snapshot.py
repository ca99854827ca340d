"""``read_snapshot``: the database's current state as a :class:`sim.policies.Snapshot`.

Why: the Python policies are the reference the SQL ``assign_chat_to_operator`` must match.
Reading the very same rows (named queries ``snapshot_chats`` / ``snapshot_operators``, times
in lab seconds computed in SQL so both sides agree to the microsecond) into the policy's
input lets a test ask both "which chat would
you give operator X now?" and compare the answers (tests/test_sql_agreement.py), and
lets the correctness and replay tools check every decision of the database.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from chatlab.db.queries import query
from sim.policies import ChatView, OperatorView, Snapshot
from sim.statemachine import State

if TYPE_CHECKING:
    import psycopg

    from chatlab.db.client import ChatDB


def read_snapshot(conn: "psycopg.Connection | ChatDB", now: float | None = None, salt: int = 0,
                  fair_window: float | None = None) -> Snapshot:
    """Open chats and all operators as the policies see them; ``now`` defaults to ``chatlab_now()``.

    With ``fair_window`` each operator's assignments in ``(now - fair_window, now]`` are counted
    (the fair-distribution limit's input); without, they are 0.

    ``conn`` is a :class:`~chatlab.db.client.ChatDB` or a psycopg connection whose
    search_path points at the chat schema.  Reads run in one transaction when the
    connection allows it, so the snapshot is consistent.
    """
    raw: Any = getattr(conn, "conn", conn)
    with raw.transaction():
        chats = raw.execute(query("snapshot_chats")).fetchall()
        if now is None:
            now = float(raw.execute(query("lab_now")).fetchone()[0])
        since = math.inf if fair_window is None else float(now) - float(fair_window)
        operators = raw.execute(query("snapshot_operators"), {"since": since}).fetchall()
    return Snapshot(
        now=float(now),
        chats=tuple(
            ChatView(chat_id=int(i), state=State(s), waiting_since=float(w),
                     last_operator_id=None if lo is None else int(lo), skill=skill, priority=int(prio),
                     weight=int(weight), created_at=float(created), sticky_operator_id=None if so is None else int(so))
            for i, s, w, lo, skill, prio, weight, created, so in chats
        ),
        operators=tuple(
            OperatorView(operator_id=int(i), online=bool(on), active_chats=int(n), max_chats=int(m),
                         last_assigned_at=la, last_activity_at=lact, skills=frozenset(skills),
                         recent_assignments=int(recent), assignments=int(total))
            for i, on, n, m, la, lact, skills, recent, total in operators
        ),
        salt=int(salt),
    )
