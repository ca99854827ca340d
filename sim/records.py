"""The mutable rows of the in-memory chat system: operators, chats and the assignment history.

They mirror the SQL tables (``operators``, ``chats``, ``chat_assignments``) column for column
where the semantics need it; :meth:`Operator.view` / :meth:`Chat.view` are what a policy may
see of them (:mod:`sim.policies`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.errors import InvalidArgument
from sim.policies import ChatView, OperatorView
from sim.statemachine import State

#: The longest message body the system accepts (as SQL's ``_chatlab_check_text``).
MAX_BODY = 10_000
#: The longest topic or skill name, and the highest priority class (the CHECKs of migration 019).
MAX_NAME = 100
MAX_PRIORITY = 1000


def check_text(what: str, value: object, limit: int) -> None:
    """SQL's ``_chatlab_check_text``: text with a non-space character, at most ``limit`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidArgument(f"{what} is too long: {len(value)} characters, at most {limit} allowed")


@dataclass
class Operator:
    """Mutable operator row.  ``chats`` is the set of chat ids currently ``assigned`` to it."""

    id: int
    max_chats: int
    online: bool = False
    last_assigned_at: float | None = None
    last_activity_at: float | None = None
    chats: set[int] = field(default_factory=set)
    skills: frozenset[str] = frozenset()

    @property
    def active_chats(self) -> int:
        return len(self.chats)

    @property
    def has_capacity(self) -> bool:
        return self.online and len(self.chats) < self.max_chats

    def view(self) -> OperatorView:
        return OperatorView(self.id, self.online, len(self.chats), self.max_chats,
                            self.last_assigned_at, self.last_activity_at, self.skills)


@dataclass
class Chat:
    """Mutable chat row.  ``assigned_at`` is the open history row's start (None when not assigned)."""

    id: int
    real_user_id: int
    state: State
    waiting_since: float
    created_at: float
    assigned_operator_id: int | None = None
    last_operator_id: int | None = None
    operator_replied_at: float | None = None
    assigned_at: float | None = None
    is_active: bool = True
    topic: str | None = None
    skill: str | None = None  # copied from the topic when the chat is opened
    priority: int = 0

    def view(self) -> ChatView:
        return ChatView(self.id, self.state, self.waiting_since, self.last_operator_id, self.skill, self.priority)


@dataclass(frozen=True)
class TopicRow:
    """One row of ``topics``: what a new chat of this topic needs (skill) and its class (priority)."""

    name: str
    skill: str | None = None
    priority: int = 0


@dataclass
class AssignmentRecord:
    """One row of the assignment history (``chat_assignments`` in SQL)."""

    chat_id: int
    operator_id: int
    assigned_at: float
    released_at: float | None = None
    release_reason: str | None = None
