"""``ChatDB``: a thin typed client, one method per SQL function of ``chatlab/db/migrations``.

Why thin: the system's rules live in SQL (that is what the lab tests); the client only
binds parameters (never string-built SQL), runs in autocommit (each call is one
transaction, so ``FOR UPDATE SKIP LOCKED`` locks end with the call), and turns the
functions' SQLSTATEs into typed errors (:mod:`chatlab.db.errors`).

    with ChatDB(uri, schema="lab") as db:
        op = db.create_operator("ann")
        chat = db.real_user_message(42, "hello")
        assert db.assign_chat_to_operator(op) == chat
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from chatlab.db.errors import DatabaseUnavailable, translate
from chatlab.db.migrate import check_schema
from sim.statemachine import State

#: Time zero of the lab's clock: scenario second t is EPOCH + t (see semantics).
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


def to_timestamp(t: float) -> datetime:
    """Scenario seconds -> aware datetime."""
    return EPOCH + timedelta(seconds=float(t))


def to_seconds(ts: datetime | None) -> float | None:
    """Aware datetime -> scenario seconds (None stays None)."""
    return None if ts is None else (ts - EPOCH).total_seconds()


@dataclass(frozen=True)
class StuckChat:
    chat_id: int
    operator_id: int
    assigned_at: datetime
    stuck_seconds: float


@dataclass(frozen=True)
class Check:
    """One line of ``chat_state_verification()``."""

    name: str
    passed: bool
    detail: str


class ChatDB:
    """One autocommit connection to the chat schema ``schema``."""

    def __init__(self, conninfo: str, schema: str = "public", *, application_name: str = "chatlab") -> None:
        self.schema = check_schema(schema)
        try:
            self.conn: psycopg.Connection = psycopg.connect(
                conninfo, autocommit=True, application_name=application_name
            )
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"cannot connect to the database: {str(exc).strip()}") from None
        self.conn.execute(sql.SQL("SET search_path TO {}, pg_temp").format(sql.Identifier(self.schema)))

    # -- plumbing ----------------------------------------------------------------------
    def __enter__(self) -> ChatDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def _rows(self, query: str, params: tuple = (), *, as_dict: bool = False) -> list[Any]:
        try:
            cur = self.conn.cursor(row_factory=dict_row) if as_dict else self.conn.cursor()
            with cur:
                cur.execute(query, params)  # type: ignore[arg-type]  # constant SQL text
                return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise translate(exc) from exc

    def _scalar(self, query: str, params: tuple = ()) -> Any:
        rows = self._rows(query, params)
        return rows[0][0] if rows else None

    # -- clock -------------------------------------------------------------------------
    def set_clock(self, t: float | None) -> None:
        """Pin ``chatlab_now()`` to scenario second ``t`` for this connection (None: real time)."""
        value = "" if t is None else to_timestamp(t).isoformat()
        self._rows("SELECT set_config('chatlab.now', %s, false)", (value,))

    def now(self) -> float:
        """``chatlab_now()`` in scenario seconds."""
        return float(self._scalar("SELECT extract(epoch FROM chatlab_now() - %s)::float8", (EPOCH,)))

    # -- operators ---------------------------------------------------------------------
    def create_operator(self, name: str, max_chats: int = 1, online: bool = True) -> int:
        return int(self._scalar("SELECT create_operator(%s, %s, %s)", (name, max_chats, online)))

    def set_operator_online(self, operator_id: int, online: bool) -> int:
        """Returns how many chats going offline released."""
        return int(self._scalar("SELECT set_operator_online(%s, %s)", (operator_id, online)))

    def touch_operator(self, operator_id: int) -> None:
        self._rows("SELECT touch_operator(%s)", (operator_id,))

    # -- chats -------------------------------------------------------------------------
    def real_user_message(self, real_user_id: int, body: str, chat_id: int | None = None) -> int:
        return int(self._scalar("SELECT real_user_message(%s, %s, %s)", (real_user_id, body, chat_id)))

    def assign_chat_to_operator(
        self, operator_id: int, policy: str = "exclude_last", fallback_after: float = 300.0, salt: int = 0
    ) -> int | None:
        value = self._scalar(
            "SELECT assign_chat_to_operator(%s, %s, %s::float8, %s::bigint)",
            (operator_id, policy, fallback_after, salt),
        )
        return None if value is None else int(value)

    def operator_message(self, operator_id: int, chat_id: int, body: str) -> int:
        """Returns the message id."""
        return int(self._scalar("SELECT operator_message(%s, %s, %s)", (operator_id, chat_id, body)))

    def unassign_chat(self, operator_id: int, chat_id: int) -> None:
        self._rows("SELECT unassign_chat(%s, %s)", (operator_id, chat_id))

    def end_chat(self, chat_id: int, reason: str = "resolved") -> None:
        self._rows("SELECT end_chat(%s, %s)", (chat_id, reason))

    def operator_chat_messages(self, operator_id: int, chat_id: int) -> list[dict[str, Any]]:
        """The chat's messages, oldest first; only for the operator holding it (else NotYourChat)."""
        return self._rows("SELECT * FROM operator_chat_messages(%s, %s)", (operator_id, chat_id), as_dict=True)

    # -- housekeeping ------------------------------------------------------------------
    def release_idle_operator_chats(self, idle_after_seconds: float) -> int:
        return int(self._scalar("SELECT release_idle_operator_chats(%s::float8)", (idle_after_seconds,)))

    def release_and_reassign_chat(self, chat_id: int, reason: str = "manual_fix") -> int:
        """Returns the operator the chat was taken from."""
        return int(self._scalar("SELECT release_and_reassign_chat(%s, %s)", (chat_id, reason)))

    def detect_stuck_chats(self, hours: float = 1.0) -> list[StuckChat]:
        rows = self._rows("SELECT * FROM detect_stuck_chats(%s::float8)", (hours,))
        return [StuckChat(int(c), int(o), a, float(s)) for c, o, a, s in rows]

    def get_assignment_queue_status(self) -> dict[str, Any]:
        rows = self._rows("SELECT * FROM get_assignment_queue_status()", as_dict=True)
        return dict(rows[0])

    def chat_state_summary(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM chat_state_summary", as_dict=True)

    def chat_next_state(self, state: str, event: str, legacy: bool = False) -> State:
        return State(self._scalar("SELECT chat_next_state(%s, %s, %s)", (str(state), str(event), legacy)))

    def verify(self) -> list[Check]:
        """The seed's verification checks (``chatlab db verify``)."""
        rows = self._rows("SELECT * FROM chat_state_verification()")
        if self._scalar("SELECT to_regproc('chat_access_verification') IS NOT NULL"):
            rows += self._rows("SELECT * FROM chat_access_verification()")
        return [Check(n, bool(p), d) for n, p, d in rows]

    # -- getters -----------------------------------------------------------------------
    def state_of(self, chat_id: int) -> State:
        value = self._scalar("SELECT chat_state FROM chats WHERE id = %s", (chat_id,))
        if value is None:
            from sim.errors import UnknownChat

            raise UnknownChat(f"unknown chat {chat_id}")
        return State(value)

    def chat(self, chat_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM chats WHERE id = %s", (chat_id,), as_dict=True)
        return rows[0] if rows else None

    def operator(self, operator_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM operators WHERE id = %s", (operator_id,), as_dict=True)
        return rows[0] if rows else None

    def chats(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM chats ORDER BY id", as_dict=True)

    def operators(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM operators ORDER BY id", as_dict=True)

    def assignments(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """History rows (of one chat, or all), oldest first."""
        if chat_id is None:
            return self._rows("SELECT * FROM chat_assignments ORDER BY id", as_dict=True)
        return self._rows("SELECT * FROM chat_assignments WHERE chat_id = %s ORDER BY id", (chat_id,), as_dict=True)

    def events(self):  # -> pandas.DataFrame (imported lazily)
        """The event log of this schema in sim/eventlog.py's shape."""
        from chatlab.db.history import read_event_log

        return read_event_log(self.conn, self.schema)

    def active_chats(self, operator_id: int) -> list[int]:
        rows = self._rows(
            "SELECT id FROM chats WHERE chat_state = 'assigned' AND assigned_operator_id = %s ORDER BY id",
            (operator_id,),
        )
        return [int(r[0]) for r in rows]


__all__ = ["ChatDB", "Check", "EPOCH", "StuckChat", "to_seconds", "to_timestamp"]
