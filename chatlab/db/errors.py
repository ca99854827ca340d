"""Typed Python errors for the SQL functions' own SQLSTATEs (class ``CL``).

The functions in ``chatlab/db/migrations`` raise ``CL001`` ... with a clear message and
change nothing; :func:`translate` turns such a psycopg error into the matching
:class:`ChatDBError` subclass, so callers (CLI, tests, load test) catch meaning, not codes.
Every class is a :class:`~sim.statemachine.ChatLabError`: the CLI prints it as one line.

Nothing here imports psycopg (the load test reads :data:`RACE_SQLSTATES` before gevent is
ready); :func:`translate` only duck-types the exception.
"""

from __future__ import annotations

import json
from typing import Any

from sim.policies import UnknownPolicy
from sim.statemachine import ChatLabError, Event, IllegalTransition, State


class ChatDBError(ChatLabError):
    """An error raised by one of the lab's SQL functions (or the database connection)."""

    sqlstate: str | None = None

    def __init__(self, message: str, *, sqlstate: str | None = None, detail: dict[str, Any] | None = None) -> None:
        Exception.__init__(self, message)
        if sqlstate is not None:
            self.sqlstate = sqlstate
        self.detail = detail or {}


class UnknownOperator(ChatDBError):
    """CL001: no operator with that id."""

    sqlstate = "CL001"


class UnknownChat(ChatDBError):
    """CL002: no chat with that id."""

    sqlstate = "CL002"


class NotYourChat(ChatDBError):
    """CL003: the chat is not assigned to this operator (or belongs to another real user)."""

    sqlstate = "CL003"


class IllegalTransitionError(ChatDBError, IllegalTransition):
    """CL004: the state machine forbids this event in the chat's state.

    Also an :class:`~sim.statemachine.IllegalTransition`, so code comparing the simulation
    with the database catches one type for both.
    """

    sqlstate = "CL004"

    def __init__(self, message: str, *, sqlstate: str | None = None, detail: dict[str, Any] | None = None) -> None:
        ChatDBError.__init__(self, message, sqlstate=sqlstate, detail=detail)
        detail = self.detail
        self.chat_id = detail.get("chat_id")
        self.state = _maybe(State, detail.get("state"))
        self.event = _maybe(Event, detail.get("event"))


class ChatCompleted(IllegalTransitionError):
    """CL005: the chat is completed; nothing may happen to it any more."""

    sqlstate = "CL005"


class InvalidArgument(ChatDBError, ValueError):
    """CL006: an argument out of range (empty or > 10000-character body, negative threshold, NULL id ...)."""

    sqlstate = "CL006"


class UnknownPolicyError(ChatDBError, UnknownPolicy):
    """CL007: an assignment policy name the database does not know."""

    sqlstate = "CL007"


class ChatNotAssigned(IllegalTransitionError):
    """CL009: release of a chat nobody holds (e.g. stuck release after it was replied to)."""

    sqlstate = "CL009"


class ConstraintViolation(ChatDBError):
    """A table constraint rejected a write (class 23): the schema's last line of defence."""


class DatabaseUnavailable(ChatDBError):
    """The server cannot be reached or the connection broke."""


def _maybe(kind: type, value: object) -> object:
    try:
        return kind(value) if value is not None else None
    except ValueError:
        return value


#: SQLSTATE -> error class, for every code the lab's functions raise.
SQLSTATE_ERRORS: dict[str, type[ChatDBError]] = {
    cls.sqlstate: cls  # type: ignore[misc]
    for cls in (UnknownOperator, UnknownChat, NotYourChat, IllegalTransitionError, ChatCompleted,
                InvalidArgument, UnknownPolicyError, ChatNotAssigned)
}

#: SQLSTATEs a correct concurrent client still meets, because another actor moved first:
#: replying to / unassigning a chat idle detection or a stuck release just took away
#: (CL003), acting on a chat that was ended meanwhile (CL005), releasing a chat that was
#: released or replied to between detect_stuck_chats and release_and_reassign_chat (CL009).
RACE_SQLSTATES: frozenset[str] = frozenset({"CL003", "CL005", "CL009"})


def translate(exc: BaseException) -> ChatDBError:
    """The typed error for a psycopg exception (or any exception with ``.sqlstate``/``.diag``)."""
    if isinstance(exc, ChatDBError):
        return exc
    sqlstate = getattr(exc, "sqlstate", None)
    diag = getattr(exc, "diag", None)
    text = str(exc).strip()
    message = getattr(diag, "message_primary", None) or (text.splitlines()[0] if text else type(exc).__name__)
    detail: dict[str, Any] = {}
    raw_detail = getattr(diag, "message_detail", None)
    if raw_detail:
        try:
            parsed = json.loads(raw_detail)
            detail = parsed if isinstance(parsed, dict) else {"detail": raw_detail}
        except ValueError:
            detail = {"detail": raw_detail}
    cls = SQLSTATE_ERRORS.get(sqlstate or "")
    if cls is not None:
        return cls(message, sqlstate=sqlstate, detail=detail)
    if sqlstate and sqlstate.startswith("23"):
        return ConstraintViolation(f"constraint violated: {message}", sqlstate=sqlstate, detail=detail)
    if sqlstate and sqlstate.startswith("22"):  # data exception: out-of-range numbers and the like
        return InvalidArgument(f"invalid argument: {message}", sqlstate=sqlstate, detail=detail)
    if sqlstate is None or sqlstate.startswith("08") or sqlstate.startswith("57"):
        return DatabaseUnavailable(f"database unavailable: {message}", sqlstate=sqlstate, detail=detail)
    return ChatDBError(f"database error {sqlstate}: {message}", sqlstate=sqlstate, detail=detail)
