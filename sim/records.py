"""The mutable rows of the in-memory chat system: operators, chats and the assignment history.

They mirror the SQL tables (``operators``, ``chats``, ``chat_assignments``) column for column
where the semantics need it; :meth:`Operator.view` / :meth:`Chat.view` are what a policy may
see of them (:mod:`sim.policies`).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from sim.errors import InvalidArgument
from sim.policies import ChatView, OperatorView
from sim.statemachine import State

#: The longest message body the system accepts (as SQL's ``_chatlab_check_text``).
MAX_BODY = 10_000
#: The longest topic or skill name, and the highest priority class (the CHECKs of migration 019).
MAX_NAME = 100
MAX_PRIORITY = 1000
MAX_WEIGHT = 100


def check_text(what: str, value: object, limit: int) -> None:
    """SQL's ``_chatlab_check_text``: text with a non-space character, at most ``limit`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidArgument(f"{what} is too long: {len(value)} characters, at most {limit} allowed")


@dataclass
class Operator:
    """Mutable operator row.  ``chats`` is the set of chat ids currently ``assigned`` to it and
    ``load`` their weights (the capacity in use); ``assigned_times`` every assignment's time
    (the fair-distribution window counts them)."""

    id: int
    max_chats: int
    online: bool = False
    last_assigned_at: float | None = None
    last_activity_at: float | None = None
    chats: set[int] = field(default_factory=set)
    skills: frozenset[str] = frozenset()
    load: int = 0
    assigned_times: list[float] = field(default_factory=list)

    @property
    def active_chats(self) -> int:
        return self.load

    @property
    def has_capacity(self) -> bool:
        return self.online and self.load < self.max_chats

    def recent_assignments(self, now: float, window: float) -> int:
        """Assignments in ``(now - window, now]`` (SQL: ``assigned_at > now - window``)."""
        return len(self.assigned_times) - bisect_right(self.assigned_times, now - window)

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name != "_view":  # any column changed: the cached view is stale
            state = self.__dict__
            state["_view"] = None
            dirty = state.get("_dirty")  # the system's set of changed operators (sim/oprank.py)
            if dirty is not None:
                dirty.add(self.id)

    def view(self, recent: int = 0) -> OperatorView:
        """What a policy sees of it, cached until a column changes: an operator-ordered policy looks
        at the whole floor at every pick, and most operators did not change since the last one."""
        cached = self.__dict__.get("_view")
        if cached is not None and cached.recent_assignments == recent and cached.assignments == len(self.assigned_times):
            return cached
        view = OperatorView(self.id, self.online, self.load, self.max_chats,
                            self.last_assigned_at, self.last_activity_at, self.skills, recent,
                            len(self.assigned_times))
        object.__setattr__(self, "_view", view)
        return view


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
    weight: int = 1
    sticky_operator_id: int | None = None  # the operator of the same user's previous chat

    @property
    def handler(self) -> int | None:
        """Its operator: the holder, else the last one who held it (known-agent routing's "previous agent")."""
        return self.assigned_operator_id if self.assigned_operator_id is not None else self.last_operator_id

    def view(self) -> ChatView:
        return ChatView(self.id, self.state, self.waiting_since, self.last_operator_id, self.skill, self.priority,
                        self.weight, self.created_at, self.sticky_operator_id)


@dataclass(frozen=True)
class TopicRow:
    """One row of ``topics``: what a new chat of this topic needs (skill), its class (priority)
    and how much of an operator's capacity it takes (weight)."""

    name: str
    skill: str | None = None
    priority: int = 0
    weight: int = 1


@dataclass
class AssignmentRecord:
    """One row of the assignment history (``chat_assignments`` in SQL)."""

    chat_id: int
    operator_id: int
    assigned_at: float
    released_at: float | None = None
    release_reason: str | None = None
