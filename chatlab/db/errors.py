"""From a database error to the lab's own error classes (:mod:`sim.errors`).

The functions in ``chatlab/db/migrations`` raise ``CL001`` ... with a clear message and
change nothing; :func:`translate` turns such a psycopg error into *the same class* the
in-memory system raises for the same mistake (``sim.errors.SQLSTATE_ERRORS``), so callers
(CLI, tests, load test, the differential test) catch meaning, not codes, and the two
implementations are compared by exception class.  Errors only a database has (a broken
connection, a constraint, an unexpected SQLSTATE) are :class:`DatabaseError` subclasses.
Every class is a :class:`~sim.errors.ChatLabError`: the CLI prints it as one line.

Nothing here imports psycopg (the load test reads :data:`RACE_SQLSTATES` before gevent is
ready); :func:`translate` only duck-types the exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sim.errors import (
    RACE_SQLSTATES,
    SQLSTATE_ERRORS,
    ChatCompleted,
    ChatLabError,
    ChatNotAssigned,
    IllegalTransition,
    InvalidArgument,
    NotYourChat,
    UnknownChat,
    UnknownOperator,
    UnknownPolicy,
    UnknownTopic,
)

__all__ = [
    "RACE_SQLSTATES", "SQLSTATE_ERRORS", "ChatCompleted", "ChatLabError", "ChatNotAssigned", "ConstraintViolation",
    "DatabaseError", "DatabaseUnavailable", "IllegalTransition", "InvalidArgument", "NotYourChat", "UnknownChat",
    "UnknownOperator", "UnknownPolicy", "UnknownTopic", "translate",
]


class DatabaseError(ChatLabError):
    """A database error that is not one of the chat system's own (an unexpected SQLSTATE)."""

    def __init__(self, message: str = "", *, sqlstate: str | None = None,
                 detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(message, detail=detail)
        self.sqlstate = sqlstate  # type: ignore[misc]  # per instance: whatever the server said


class ConstraintViolation(DatabaseError):
    """A table constraint rejected a write (class 23): the schema's last line of defence."""


class DatabaseUnavailable(DatabaseError):
    """The server cannot be reached or the connection broke."""


def translate(exc: BaseException) -> ChatLabError:
    """The lab's error for a psycopg exception (or any exception with ``.sqlstate``/``.diag``)."""
    if isinstance(exc, ChatLabError):
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
        return cls(message, detail=detail)
    if sqlstate and sqlstate.startswith("23"):
        return ConstraintViolation(f"constraint violated: {message}", sqlstate=sqlstate, detail=detail)
    if sqlstate and sqlstate.startswith("22"):  # data exception: out-of-range numbers and the like
        return InvalidArgument(f"invalid argument: {message}", detail={"sqlstate": sqlstate, **detail})
    if sqlstate is None or sqlstate.startswith("08") or sqlstate.startswith("57"):
        return DatabaseUnavailable(f"database unavailable: {message}", sqlstate=sqlstate, detail=detail)
    return DatabaseError(f"database error {sqlstate}: {message}", sqlstate=sqlstate, detail=detail)
