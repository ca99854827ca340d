"""Invariants of the real system, checked in SQL on a schema after load or injected faults.

Why in SQL: the history (``chat_assignments``) and the event log (``chat_events``) are what
the database itself committed, so checking them there needs no trust in any client.  The
checks (named query ``invariants`` in ``chatlab/db/queries.sql``): no chat held by two operators at once, no operator over its
capacity, ``assigned`` iff an operator, history agrees with the current state, completed iff
inactive, no chat lost, and every chat's events form a legal walk of the state machine
(``chat_transitions``, the same table as ``sim/statemachine.py``) ending in its state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatlab.db.queries import query


@dataclass(frozen=True)
class Violation:
    """One broken invariant: which check, on which chat/operator, and what was found."""

    check: str
    chat_id: int | None
    operator_id: int | None
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: chat {self.chat_id}, operator {self.operator_id}: {self.detail}"


def check_invariants(conninfo: Any, schema: str = "public") -> list[Violation]:
    """Every violation in ``schema`` (an empty list means every invariant holds).

    ``conninfo`` is a URI or an open psycopg connection (left open).
    """
    import psycopg

    own = not isinstance(conninfo, psycopg.Connection)
    conn = psycopg.connect(conninfo, autocommit=True) if own else conninfo
    try:
        with conn.transaction(), conn.cursor() as cur:
            # REPEATABLE READ: all checks see one snapshot, even while load is still running
            cur.execute(query("read_only_snapshot"))
            cur.execute(query("set_local_search_path", schema=schema))
            cur.execute(query("invariants"))
            return [Violation(str(c), i, o, str(d)) for c, i, o, d in cur.fetchall()]
    finally:
        if own:
            conn.close()
