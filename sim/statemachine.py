"""The chat state machine: the one source of truth for states, events and legal transitions.

The seed (``README_CHAT_FIX.md``) draws the cycle

    waiting_assignment -> assigned -> waiting_real_user_reply -> waiting_assignment

plus ``completed``.  Everything else in the lab obeys this module: the simulation
applies every state change through :func:`next_state`, the SQL migrations load the same
table into ``chat_transitions`` (see ``chatlab/db/migrations``) and a test checks that
the database agrees with :data:`TRANSITIONS` on every (state, event) pair.

One transition is marked *legacy only*: assigning a chat that sits in
``waiting_real_user_reply``.  The pre-fix system did exactly that (an operator reply
put the chat straight back in the queue, although there was nothing to answer), so the
``legacy`` policy needs it to reproduce the bug; under the fix it is illegal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sim.errors import ChatCompleted, IllegalTransition, UnknownName


class State(str, Enum):
    """Where a chat is.  Values are the strings stored in ``chats.chat_state``."""

    WAITING_ASSIGNMENT = "waiting_assignment"
    ASSIGNED = "assigned"
    WAITING_REAL_USER_REPLY = "waiting_real_user_reply"
    COMPLETED = "completed"

    def __str__(self) -> str:  # so f-strings print the bare value
        return self.value


class Event(str, Enum):
    """Something that happens to a chat.  Values are the strings in event logs and SQL."""

    USER_MESSAGE = "user_message"  # the real user writes (also opens a new chat)
    ASSIGN = "assign"  # an operator is given the chat
    OPERATOR_REPLY = "operator_reply"  # the assigned operator answers
    UNASSIGN = "unassign"  # the assigned operator hands the chat back
    IDLE_RELEASE = "idle_release"  # idle detection takes it from an inactive operator
    STUCK_RELEASE = "stuck_release"  # stuck-chat detection / release_and_reassign_chat
    END = "end"  # the chat is closed (resolved, abandoned or ended by anyone)

    def __str__(self) -> str:
        return self.value


#: States a chat can be assigned from under the seed's fix.
ASSIGNABLE_STATES: frozenset[State] = frozenset({State.WAITING_ASSIGNMENT})
#: States the pre-fix (legacy) system treated as assignable: any unassigned open chat.
LEGACY_ASSIGNABLE_STATES: frozenset[State] = frozenset(
    {State.WAITING_ASSIGNMENT, State.WAITING_REAL_USER_REPLY}
)
#: The state a brand-new chat starts in (created by its first user message).
INITIAL_STATE = State.WAITING_ASSIGNMENT
#: Events that take a chat away from its operator and put it back in the queue.
RELEASE_EVENTS: frozenset[Event] = frozenset({Event.UNASSIGN, Event.IDLE_RELEASE, Event.STUCK_RELEASE})


@dataclass(frozen=True)
class Transition:
    """One legal move.  ``legacy_only`` moves are legal only for the pre-fix policy."""

    source: State
    event: Event
    target: State
    legacy_only: bool = False
    why: str = ""


_S, _E = State, Event

#: Every legal (state, event) pair.  A pair not listed here is illegal.
TRANSITIONS: dict[tuple[State, Event], Transition] = {
    (t.source, t.event): t
    for t in [
        # waiting_assignment: in the queue, waiting for an operator
        Transition(_S.WAITING_ASSIGNMENT, _E.USER_MESSAGE, _S.WAITING_ASSIGNMENT,
                   why="another message while queued keeps its place in the queue"),
        Transition(_S.WAITING_ASSIGNMENT, _E.ASSIGN, _S.ASSIGNED, why="an operator takes it"),
        Transition(_S.WAITING_ASSIGNMENT, _E.END, _S.COMPLETED, why="user gives up or chat is closed"),
        # assigned: an operator is working on it
        Transition(_S.ASSIGNED, _E.USER_MESSAGE, _S.ASSIGNED, why="more text for the same operator"),
        Transition(_S.ASSIGNED, _E.OPERATOR_REPLY, _S.WAITING_REAL_USER_REPLY,
                   why="the fix: a reply parks the chat until the user answers"),
        Transition(_S.ASSIGNED, _E.UNASSIGN, _S.WAITING_ASSIGNMENT, why="operator hands it back"),
        Transition(_S.ASSIGNED, _E.IDLE_RELEASE, _S.WAITING_ASSIGNMENT, why="operator went idle"),
        Transition(_S.ASSIGNED, _E.STUCK_RELEASE, _S.WAITING_ASSIGNMENT, why="assigned too long"),
        Transition(_S.ASSIGNED, _E.END, _S.COMPLETED, why="chat closed while assigned"),
        # waiting_real_user_reply: operator answered, ball is in the user's court
        Transition(_S.WAITING_REAL_USER_REPLY, _E.USER_MESSAGE, _S.WAITING_ASSIGNMENT,
                   why="the user answered: the chat is assignable again"),
        Transition(_S.WAITING_REAL_USER_REPLY, _E.ASSIGN, _S.ASSIGNED, legacy_only=True,
                   why="pre-fix bug: the replied chat was still in the queue (a premature assignment)"),
        Transition(_S.WAITING_REAL_USER_REPLY, _E.END, _S.COMPLETED, why="user leaves after the answer"),
        # completed is terminal: no transitions out
    ]
}


def as_state(value: State | str) -> State:
    try:
        return State(value)
    except ValueError:
        raise UnknownName(f"unknown chat state {value!r}; expected one of: {', '.join(s.value for s in State)}") from None


def as_event(value: Event | str) -> Event:
    try:
        return Event(value)
    except ValueError:
        raise UnknownName(f"unknown chat event {value!r}; expected one of: {', '.join(e.value for e in Event)}") from None


def next_state(state: State | str, event: Event | str, *, chat_id: object = "?", legacy: bool = False) -> State:
    """Return the state after ``event``; raise :class:`IllegalTransition` if it is not legal.

    ``legacy=True`` also allows the transitions marked ``legacy_only``.
    """
    state, event = as_state(state), as_event(event)
    rule = TRANSITIONS.get((state, event))
    if rule is None or (rule.legacy_only and not legacy):
        raise illegal(chat_id, state, event, legacy=legacy)
    return rule.target


def illegal(chat_id: object, state: State, event: Event, *, legacy: bool = False) -> IllegalTransition:
    """The error for an illegal (state, event): :class:`ChatCompleted` in ``completed``, else
    :class:`IllegalTransition`, with the hint the SQL function ``chat_next_state`` gives too."""
    if state is State.COMPLETED:
        return ChatCompleted.on(chat_id, event)
    rule = TRANSITIONS.get((state, event))
    hint = " (only the legacy pre-fix policy may do that)" if rule and rule.legacy_only and not legacy else ""
    return IllegalTransition.of(chat_id, state, event, hint)


def is_legal(state: State | str, event: Event | str, *, legacy: bool = False) -> bool:
    """True when ``event`` may happen in ``state``."""
    rule = TRANSITIONS.get((as_state(state), as_event(event)))
    return rule is not None and (legacy or not rule.legacy_only)


def state_pairs(*, legacy: bool = True) -> frozenset[tuple[State, State]]:
    """The (from, to) state pairs some legal event produces: what a SQL trigger can check."""
    return frozenset((t.source, t.target) for t in TRANSITIONS.values() if legacy or not t.legacy_only)
