"""The lab's one error hierarchy: every mistake a user or a caller can make is a :class:`ChatLabError`.

Why one hierarchy: the CLI prints any ``ChatLabError`` as one line and exits 2 (never a
traceback for a user mistake), and the two implementations of the chat system — the
in-memory ``sim/system.py`` and the SQL functions — must fail *the same way*.  So the
domain errors live here, each carrying the SQLSTATE the SQL functions raise for it
(``docs/semantics.md``, "Errors"); ``chatlab.db.errors.translate`` turns a database error
back into exactly these classes, and the differential test compares exception classes
directly.

==========  =========================  =================================================
SQLSTATE    class                      meaning
==========  =========================  =================================================
CL001       :class:`UnknownOperator`   no operator with that id
CL002       :class:`UnknownChat`       no chat with that id
CL003       :class:`NotYourChat`       not assigned to this operator / another user's chat
CL004       :class:`IllegalTransition` the state machine forbids the event in this state
CL005       :class:`ChatCompleted`     the chat is completed (a kind of illegal transition)
CL006       :class:`InvalidArgument`   NULL id, bad text, negative/NaN threshold, ...
CL007       :class:`UnknownPolicy`     unknown policy name or parameter
CL009       :class:`ChatNotAssigned`   release of a chat nobody holds
CL010       :class:`UnknownTopic`      a new chat names a topic that is not defined
==========  =========================  =================================================

Errors of the other layers (a bad scenario file here; the database connection in
``chatlab.db``; the load test in ``loadtest``; the command line in ``chatlab.commands``)
subclass :class:`ChatLabError` too, next to the code that raises them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class ChatLabError(Exception):
    """Base class of every error a user can cause; the CLI prints these as one line, exit 2.

    ``detail`` carries machine-readable facts (the SQL functions send them as JSON in the
    error's DETAIL field, e.g. ``{"chat_id": 7, "state": "assigned", "event": "assign"}``).
    """

    #: The SQLSTATE the SQL functions raise for this error (``None``: not a database error).
    sqlstate: ClassVar[str | None] = None

    def __init__(self, message: str = "", *, detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.detail: dict[str, Any] = dict(detail or {})


class UnknownOperator(ChatLabError):
    """No operator with that id."""

    sqlstate = "CL001"


class UnknownChat(ChatLabError):
    """No chat with that id."""

    sqlstate = "CL002"


class NotYourChat(ChatLabError):
    """The chat is not assigned to the operator (or not owned by the real user) making the call."""

    sqlstate = "CL003"


class IllegalTransition(ChatLabError):
    """An event the state machine does not allow in the chat's current state.

    ``chat_id``, ``state`` and ``event`` come from ``detail`` (``state``/``event`` as
    :class:`~sim.statemachine.State` / :class:`~sim.statemachine.Event` when they are valid
    names, whichever implementation raised it).
    """

    sqlstate = "CL004"

    def __init__(self, message: str = "", *, detail: Mapping[str, Any] | None = None) -> None:
        from sim.statemachine import Event, State  # at call time: statemachine imports this module

        super().__init__(message, detail=detail)
        self.chat_id = self.detail.get("chat_id")
        self.state = _member(State, self.detail.get("state"))
        self.event = _member(Event, self.detail.get("event"))

    @classmethod
    def of(cls, chat_id: object, state: object, event: object, hint: str = "") -> IllegalTransition:
        """The error for ``event`` in ``state`` of ``chat_id``, worded as the SQL functions word it."""
        state, event = _text(state), _text(event)
        return cls(f"chat {chat_id}: event '{event}' is not allowed in state '{state}'{hint}",
                   detail={"chat_id": chat_id, "state": state, "event": event})


class ChatCompleted(IllegalTransition):
    """The chat is completed: nothing may happen to it any more."""

    sqlstate = "CL005"

    @classmethod
    def on(cls, chat_id: object, event: object) -> ChatCompleted:
        return cls.of(chat_id, "completed", event)  # type: ignore[return-value]


class ChatNotAssigned(IllegalTransition):
    """A release (stuck release, ``release_and_reassign_chat``) of a chat nobody holds."""

    sqlstate = "CL009"


class InvalidArgument(ChatLabError, ValueError):
    """An argument out of range (negative threshold, non-finite time, empty text, NULL id ...)."""

    sqlstate = "CL006"


class UnknownPolicy(ChatLabError):
    """A policy name or parameter that does not exist."""

    sqlstate = "CL007"


class UnknownTopic(ChatLabError):
    """A new chat names a topic the system does not have."""

    sqlstate = "CL010"


class UnknownName(ChatLabError, ValueError):
    """A string that is not a state or event name (e.g. from a hand-edited log)."""


class InvalidEventLog(ChatLabError):
    """A frame or file that does not have the event-log schema."""


class DistributionError(ChatLabError):
    """A distribution table that cannot be used.  ``field`` is the dotted key inside it ("" = the table)."""

    def __init__(self, field: str, expected: str) -> None:
        self.field = field
        self.expected = expected
        super().__init__(f"{field}: expected {expected}" if field else f"expected {expected}")


class ScenarioError(ChatLabError):
    """A scenario that cannot be used: names the file, the dotted field and what was expected."""

    def __init__(self, file: str, field: str, expected: str) -> None:
        self.file, self.field, self.expected = file, field, expected
        where = f"{file}: {field}" if field else str(file)
        super().__init__(f"{where}: expected {expected}")


#: SQLSTATE -> error class, for every code the SQL functions raise.
SQLSTATE_ERRORS: dict[str, type[ChatLabError]] = {
    cls.sqlstate: cls  # type: ignore[misc]
    for cls in (UnknownOperator, UnknownChat, NotYourChat, IllegalTransition, ChatCompleted,
                InvalidArgument, UnknownPolicy, ChatNotAssigned, UnknownTopic)
}

#: SQLSTATEs a correct concurrent client still meets because another actor moved first:
#: replying to / unassigning a chat idle detection or a stuck release just took away
#: (CL003), acting on a chat that was ended meanwhile (CL005), releasing a chat that was
#: released or replied to between ``detect_stuck_chats`` and ``release_and_reassign_chat``
#: (CL009).  The load test counts them as outcomes, not failures.
RACE_SQLSTATES: frozenset[str] = frozenset({"CL003", "CL005", "CL009"})


def _text(value: object) -> Any:
    """An enum's value, else the value itself (``None`` stays ``None``)."""
    return getattr(value, "value", value)


def _member(kind: Any, value: object) -> Any:
    """``kind(value)`` when ``value`` names a member, else ``value`` unchanged."""
    try:
        return kind(value) if value is not None else None
    except ValueError:
        return value
