"""``read_snapshot``: the database's current state as a :class:`sim.policies.Snapshot`.

Why: the Python policies are the reference the SQL ``assign_chat_to_operator`` must match.
Reading the very same rows into the policy's input lets a test ask both "which chat would
you give operator X now?" and compare the answers (tests/test_sql_agreement.py), and
lets the correctness and replay tools check every decision of the database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim.policies import ChatView, OperatorView, Snapshot
from sim.statemachine import State

if TYPE_CHECKING:
    import psycopg

    from chatlab.db.client import ChatDB

_EPOCH = "2026-01-01 00:00:00+00"

# Times as float seconds since the lab's epoch, computed in SQL so Python and SQL agree
# to the microsecond.
_CHATS = """
SELECT id, chat_state, extract(epoch FROM waiting_since - %(epoch)s::timestamptz)::float8, last_operator_id
FROM chats WHERE chat_state <> 'completed' ORDER BY id
"""
_OPERATORS = """
SELECT o.id, o.is_online,
       (SELECT count(*) FROM chats c WHERE c.chat_state = 'assigned' AND c.assigned_operator_id = o.id),
       o.max_chats,
       extract(epoch FROM o.last_assigned_at - %(epoch)s::timestamptz)::float8,
       extract(epoch FROM o.last_activity_at - %(epoch)s::timestamptz)::float8
FROM operators o ORDER BY o.id
"""
_NOW = "SELECT extract(epoch FROM chatlab_now() - %(epoch)s::timestamptz)::float8"


def read_snapshot(conn: "psycopg.Connection | ChatDB", now: float | None = None, salt: int = 0) -> Snapshot:
    """Open chats and all operators as the policies see them; ``now`` defaults to ``chatlab_now()``.

    ``conn`` is a :class:`~chatlab.db.client.ChatDB` or a psycopg connection whose
    search_path points at the chat schema.  Reads run in one transaction when the
    connection allows it, so the snapshot is consistent.
    """
    raw: Any = getattr(conn, "conn", conn)
    params = {"epoch": _EPOCH}
    with raw.transaction():
        chats = raw.execute(_CHATS, params).fetchall()
        operators = raw.execute(_OPERATORS, params).fetchall()
        if now is None:
            now = float(raw.execute(_NOW, params).fetchone()[0])
    return Snapshot(
        now=float(now),
        chats=tuple(
            ChatView(chat_id=int(i), state=State(s), waiting_since=float(w),
                     last_operator_id=None if lo is None else int(lo))
            for i, s, w, lo in chats
        ),
        operators=tuple(
            OperatorView(operator_id=int(i), online=bool(on), active_chats=int(n), max_chats=int(m),
                         last_assigned_at=la, last_activity_at=lact)
            for i, on, n, m, la, lact in operators
        ),
        salt=int(salt),
    )
