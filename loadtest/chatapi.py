"""The chat system's SQL functions as the Locust users call them (one place for names and errors).

Each method is one SQL function of ``chatlab/db/migrations`` (the seed's 014-016 plus the
lab's policy-aware assign), called through :class:`~loadtest.pgclient.PgClient` so Locust
counts it.  Races that the real system has too — an operator replying to a chat that idle
detection just took away, a user ending a chat that was closed meanwhile — come back as
the database's own SQLSTATEs and are *expected* outcomes here, not failures; anything
else is a failure in Locust's statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import sql

from chatlab.db.errors import RACE_SQLSTATES  # no psycopg import there
from loadtest.pgclient import Outcome, PgClient

#: SQLSTATEs a correct concurrent client still meets because another actor moved first
#: (see ``chatlab.db.errors``): counted as ``sql:<SQLSTATE>`` rows, not as failures.
RACE_STATES: frozenset[str] = RACE_SQLSTATES


def _read_sql(name: str) -> sql.SQL:
    return sql.SQL((Path(__file__).resolve().parent / "sql" / name).read_text())  # type: ignore[arg-type]


_CHAT_STATUS = _read_sql("chat_status.sql")
_OPERATOR_INBOX = _read_sql("operator_inbox.sql")


@dataclass(frozen=True)
class HeldChat:
    chat_id: int
    pending: bool  # the user's last message is not answered yet


@dataclass(frozen=True)
class Inbox:
    online: bool
    held: tuple[HeldChat, ...]

    @property
    def pending(self) -> list[HeldChat]:
        return [c for c in self.held if c.pending]


class ChatAPI:
    """Typed wrappers around the chat functions for one Locust user's connection."""

    def __init__(self, client: PgClient) -> None:
        self.client = client

    # operators ---------------------------------------------------------------------------
    def set_operator_online(self, operator_id: int, online: bool) -> Outcome:
        return self.client.call("set_operator_online", operator_id, online, expected=RACE_STATES, empty_ok=False)

    def touch_operator(self, operator_id: int) -> Outcome:
        return self.client.call("touch_operator", operator_id, expected=RACE_STATES, empty_ok=False)

    def assign(self, operator_id: int, policy: str, fallback_after: float, salt: int | None) -> int | None:
        """The chat id the operator got, or None (nothing it may take now)."""
        out = self.client.call("assign_chat_to_operator", operator_id, policy, fallback_after, salt,
                               expected=RACE_STATES)
        return None if out.label else int(out.value)

    def reply(self, operator_id: int, chat_id: int, body: str) -> bool:
        """True if the reply was accepted (False: the chat is no longer this operator's)."""
        out = self.client.call("operator_message", operator_id, chat_id, body, expected=RACE_STATES)
        return out.sqlstate is None

    def unassign(self, operator_id: int, chat_id: int) -> bool:
        out = self.client.call("unassign_chat", operator_id, chat_id, expected=RACE_STATES, empty_ok=False)
        return out.sqlstate is None

    # real users --------------------------------------------------------------------------
    def user_message(self, real_user_id: int, body: str, chat_id: int | None = None) -> int | None:
        """The chat id the message went to (a new chat when ``chat_id`` is None); None on a race."""
        out = self.client.call("real_user_message", real_user_id, body, chat_id, expected=RACE_STATES)
        return None if out.sqlstate else int(out.value)

    def end_chat(self, chat_id: int, reason: str) -> bool:
        out = self.client.call("end_chat", chat_id, reason, expected=RACE_STATES, empty_ok=False)
        return out.sqlstate is None

    def chat_status(self, chat_id: int) -> tuple[Any, ...] | None:
        """(state, operator_replied_at, last user message time) of one chat, or None if missing."""
        out = self.client.query("poll_chat", _CHAT_STATUS, {"chat_id": chat_id})
        return out.rows[0] if out.rows else None

    def inbox(self, operator_id: int) -> Inbox:
        """Is the operator logged in, and which chats does it hold (pending first-come first)."""
        out = self.client.query("operator_inbox", _OPERATOR_INBOX, {"operator_id": operator_id})
        if not out.rows:
            return Inbox(False, ())
        held = tuple(HeldChat(int(r[1]), bool(r[2])) for r in out.rows if r[1] is not None)
        return Inbox(bool(out.rows[0][0]), held)

    # housekeeping ------------------------------------------------------------------------
    def release_idle(self, idle_after_wall_s: float) -> int:
        out = self.client.call("release_idle_operator_chats", idle_after_wall_s, expected=RACE_STATES, empty_ok=False)
        return int(out.value or 0)

    def detect_stuck(self, hours: float) -> list[int]:
        out = self.client.call("detect_stuck_chats", hours, expected=RACE_STATES)
        return [int(r[0]) for r in out.rows if r and r[0] is not None]

    def release_and_reassign(self, chat_id: int, reason: str) -> bool:
        out = self.client.call("release_and_reassign_chat", chat_id, reason, expected=RACE_STATES, empty_ok=False)
        return out.sqlstate is None
