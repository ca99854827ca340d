"""``TargetDB``: the load test's client for an outside target — ChatDB's calls, played by the target's flows.

The Locust users (``loadtest/users``) call the same methods on it as on
:class:`~chatlab.db.client.ChatDB`; each runs the target file's statement for that flow
(:mod:`loadtest.target`), observed and reported to Locust under the lab's own request names
(``assign_chat_to_operator``, ``operator_message``, ...), so a target's Locust table reads
like the lab's.  The lab's integer ids become the target's (UUIDs with ``ids = "uuid"``); the
chat ids a target returns are numbered per process so the users' bookkeeping stays ints.
What the target's assign cannot take (the policy, the routing rules) is not passed: the
target *is* the policy.  A missing optional flow is played the nearest way the target can:
no hand-back (the operator replies), no log-in/out, no heartbeat, no housekeeping job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chatlab.db.client import ChatDB, HeldChat, Inbox
from loadtest.target import Target

#: target chat id <-> this process's integer handle (shared by every connection of the process)
_TO_INT: dict[str, int] = {}
_FROM_INT: dict[int, Any] = {}


def chat_handle(value: Any) -> int:
    """The process's integer for a chat id the target returned (an integer id is its own handle)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    key = str(value)
    handle = _TO_INT.get(key)
    if handle is None:
        handle = _TO_INT[key] = -(len(_TO_INT) + 1)  # negative: never an integer id's own number
        _FROM_INT[handle] = value
    return handle


class TargetDB(ChatDB):
    """One autocommit connection to the target's schema (see the module docstring)."""

    def __init__(self, conninfo: str, schema: str, target: Target, **kwargs: Any) -> None:
        super().__init__(conninfo, schema, **kwargs)
        self.target = target

    def _flow(self, flow: str, report_as: str, params: Mapping[str, Any], *, nothing_if_empty: bool = False) -> list:
        return self.run_statement(report_as, self.target.statement(flow), params, nothing_if_empty=nothing_if_empty)

    def _chat(self, handle: int) -> Any:
        return _FROM_INT.get(handle, handle)

    # the flows ----------------------------------------------------------------------------
    def create_operator(self, name: str, max_chats: int = 1, online: bool = True, skills: Any = (), *,
                        operator_id: int | None = None) -> int:
        assert operator_id is not None, "a target's operators are created with the lab's id"
        self._flow("create_operator", "create_operator",
                   {"operator_id": self.target.operator_id(operator_id), "name": name, "max_chats": max_chats})
        if not online:
            self.set_operator_online(operator_id, False)
        return operator_id

    def real_user_message(self, real_user_id: int, body: str, chat_id: int | None = None, topic: str | None = None) -> int:
        user = self.target.user_id(real_user_id)
        if chat_id is None:
            rows = self._flow("new_user_message", "real_user_message", {"user_id": user, "body": body})
            return chat_handle(rows[0][0])
        self._flow("user_reply", "real_user_message", {"user_id": user, "chat_id": self._chat(chat_id), "body": body})
        return chat_id

    def assign_chat_to_operator(self, operator_id: int, *rules: Any, **kw: Any) -> int | None:
        rows = self._flow("assign", "assign_chat_to_operator", {"operator_id": self.target.operator_id(operator_id)},
                          nothing_if_empty=True)
        if not rows or rows[0][0] is None:
            return None
        return chat_handle(rows[0][0])

    def operator_message(self, operator_id: int, chat_id: int, body: str) -> int:
        self._flow("operator_reply", "operator_message",
                   {"operator_id": self.target.operator_id(operator_id), "chat_id": self._chat(chat_id), "body": body})
        return 0

    def unassign_chat(self, operator_id: int, chat_id: int) -> None:
        if not self.target.has("unassign"):  # no hand-back: the operator answers instead
            self.operator_message(operator_id, chat_id, "answer")
            return
        self._flow("unassign", "unassign_chat",
                   {"operator_id": self.target.operator_id(operator_id), "chat_id": self._chat(chat_id)})

    def end_chat(self, chat_id: int, reason: str = "resolved") -> None:
        self._flow("end_chat", "end_chat", {"chat_id": self._chat(chat_id)})

    def set_operator_online(self, operator_id: int, online: bool) -> int:
        flow = "online" if online else "offline"
        if not self.target.has(flow):
            return 0
        rows = self._flow(flow, "set_operator_online", {"operator_id": self.target.operator_id(operator_id)})
        return int(rows[0][0]) if rows and rows[0] and isinstance(rows[0][0], int) else 0

    def touch_operator(self, operator_id: int) -> None:
        if self.target.has("touch"):
            self._flow("touch", "touch_operator", {"operator_id": self.target.operator_id(operator_id)})

    def _released(self, flow: str, report_as: str, params: Mapping[str, Any]) -> int:
        """A housekeeping job: the count it released (0 when the target has no such job)."""
        if not self.target.has(flow):
            return 0
        rows = self._flow(flow, report_as, params, nothing_if_empty=True)
        return int(rows[0][0] or 0) if rows and rows[0] else 0

    def release_idle_operator_chats(self, idle_after_seconds: float) -> int:
        return self._released("idle_detection", "release_idle_operator_chats",
                              {"idle_after_seconds": idle_after_seconds})

    def release_stuck_chats(self, stuck_after_seconds: float) -> int:
        return self._released("stuck_release", "release_stuck_chats", {"stuck_after_seconds": stuck_after_seconds})

    def release_unanswered_chats(self, after_seconds: float) -> int:
        return 0  # a lab routing rule: a target has its own jobs or none

    # what the clients see ---------------------------------------------------------------------
    def chat_status(self, chat_id: int) -> tuple[Any, ...] | None:
        rows = self._flow("chat_status", "chat_status", {"chat_id": self._chat(chat_id)})
        return tuple(rows[0]) if rows else None

    def inbox(self, operator_id: int) -> Inbox:
        rows = self._flow("operator_inbox", "operator_inbox", {"operator_id": self.target.operator_id(operator_id)})
        if not rows:
            return Inbox(False, ())
        held = tuple(HeldChat(chat_handle(r[1]), bool(r[2])) for r in rows if r[1] is not None)
        return Inbox(bool(rows[0][0]), held)
