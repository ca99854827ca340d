"""Assignment policies: small, pure, swappable objects with one method.

``policy.pick(snapshot, operator_id)`` answers "operator X asks for work: which chat, if
any?" from an immutable :class:`Snapshot` of the queue and the operators.  It never
mutates anything, so the simulation, the tests and the SQL cross-check can all call it on
the same state and expect the same answer.  ``chatlab/db/migrations`` implements every
policy again in PL/pgSQL (``assign_chat_to_operator(op, policy, ...)``) and
``tests/test_sql_agreement.py`` proves both pick the same chat.

Two families:

* *chat-ordered* policies (``legacy``, ``exclude_last``, ``exclude_last_fallback``,
  ``random``) filter the queue and take the first chat in their order; the other
  operators do not matter.
* *operator-ordered* policies (``round_robin``, ``least_loaded``, ``longest_idle``) decide
  *who* is next.  They are defined as a greedy matching: sort the operators that can take
  work by the policy's key, let each in turn take the oldest chat it may have (the fix's
  eligibility rule), and give the requester whatever the matching gave it.  So an
  operator who is not "next" gets nothing while someone ahead of it can take the chat.

Routing rules apply to every policy alike (:class:`sim.routing.Routing`: capacity by weight,
skills and relaxation, known-agent reservations, the fair-distribution limit, priority classes
or SLA deadlines); the policy decides only within them.  Without any rule they change nothing.

Push mode (a waiting chat picks a free operator) needs no second method: a dispatcher
offers work to the free operators one by one and calls ``pick`` for each (see
``sim/model.py``); operator-ordered policies then route each chat to the operator the
policy prefers.

Ties are always broken by id so results are deterministic.  ``random`` uses a salted
MD5 of the chat id, which PostgreSQL's ``md5()`` reproduces exactly.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from sim.errors import InvalidArgument, UnknownPolicy
from sim.routing import NO_ROUTING, Routing
from sim.statemachine import ASSIGNABLE_STATES, LEGACY_ASSIGNABLE_STATES, State

POLICY_NAMES: tuple[str, ...] = (
    "legacy",
    "exclude_last",
    "exclude_last_fallback",
    "round_robin",
    "least_loaded",
    "longest_idle",
    "random",
)
#: The buggy variants of :mod:`sim.variants` (reported bugs, for ``chatlab bugs``): valid names,
#: never in a default comparison.
VARIANT_NAMES: tuple[str, ...] = (
    "least_loaded_lifetime",
    "least_loaded_by_creation",
    "newest_first",
    "sticky_offline",
    "exclude_last_unlocked",
)
KNOWN_NAMES: tuple[str, ...] = POLICY_NAMES + VARIANT_NAMES


@dataclass(frozen=True)
class ChatView:
    """What a policy may know about one open chat."""

    chat_id: int
    state: State
    waiting_since: float  # when it (re-)entered the queue: the last user message that made it waiting
    last_operator_id: int | None = None
    skill: str | None = None  # the skill an operator needs to take it (None: any operator)
    priority: int = 0  # its class: higher is served first
    weight: int = 1  # units of an operator's capacity it takes
    created_at: float | None = None  # when it was opened (known-agent window)
    sticky_operator_id: int | None = None  # the operator of the same user's previous chat


@dataclass(frozen=True)
class OperatorView:
    """What a policy may know about one operator."""

    operator_id: int
    online: bool = True
    active_chats: int = 0  # capacity in use: the weights of the chats it holds
    max_chats: int = 1
    last_assigned_at: float | None = None  # last time it was given a chat (round robin)
    last_activity_at: float | None = None  # last assignment, reply or unassign (longest idle)
    skills: frozenset[str] = frozenset()
    recent_assignments: int = 0  # assignments in the routing's fair window (fair-distribution limit)
    assignments: int = 0  # every assignment it was ever given (only a buggy variant ranks by it)

    @property
    def has_capacity(self) -> bool:
        return self.online and self.active_chats < self.max_chats


@dataclass(frozen=True)
class Snapshot:
    """The whole world a policy sees: a moment, the open chats and the operators."""

    now: float
    chats: tuple[ChatView, ...] = ()
    operators: tuple[OperatorView, ...] = ()
    salt: int = 0  # only ``random`` uses it; callers draw it from their seeded RNG

    def operator(self, operator_id: int) -> OperatorView | None:
        return self._by_id.get(operator_id)

    @cached_property
    def _by_id(self) -> dict[int, OperatorView]:
        return {op.operator_id: op for op in self.operators}


def _nulls_first(value: float | None) -> float:
    return -math.inf if value is None else value


class Policy(ABC):
    """Pick a chat for an operator who asks for one, or ``None``."""

    name: ClassVar[str]
    #: Skills, priorities, SLA ordering (set by :func:`make_policy`; the same for every policy of a run).
    routing: Routing = NO_ROUTING

    @abstractmethod
    def pick(self, snapshot: Snapshot, operator_id: int) -> int | None:
        """Return the chat id the requesting operator should get now, or ``None``."""

    @property
    def params(self) -> dict[str, Any]:
        """Parameters that change behaviour (for reports and the SQL call), routing rules included."""
        return {**self.own_params, **self.routing.params}

    @property
    def own_params(self) -> dict[str, float]:
        """The policy's own parameters (``exclude_last_fallback``'s ``fallback_after``)."""
        return {}

    @property
    def legacy(self) -> bool:
        """True for the pre-fix behaviour, which may assign a chat awaiting the user's reply."""
        return False

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def _requester(self, snapshot: Snapshot, operator_id: int) -> OperatorView | None:
        """The asking operator, if it may take anything now (online, capacity, fair limit)."""
        op = snapshot.operator(operator_id)
        return op if op is not None and op.has_capacity and self.routing.takes_more(op) else None


class ChatOrderedPolicy(Policy):
    """Filter the queue for the requester and take the first chat in the policy's order."""

    def eligible(self, chat: ChatView, operator_id: int, now: float) -> bool:
        """The fix's rule: waiting for assignment and not last handled by this operator."""
        return chat.state in ASSIGNABLE_STATES and chat.last_operator_id != operator_id

    def order(self, chat: ChatView, snapshot: Snapshot, operator_id: int) -> tuple:
        return self.routing.queue_key(chat)

    def pick(self, snapshot: Snapshot, operator_id: int) -> int | None:
        op = self._requester(snapshot, operator_id)
        if op is None:
            return None
        now, routing = snapshot.now, self.routing
        candidates = [c for c in snapshot.chats if self.eligible(c, operator_id, now) and routing.serves(c, op, snapshot)]
        if not candidates:
            return None
        return min(candidates, key=lambda c: (routing.mine_first(c, snapshot, operator_id),
                                              *self.order(c, snapshot, operator_id))).chat_id


class Legacy(ChatOrderedPolicy):
    """The seed's pre-fix behaviour: any unassigned open chat, oldest first, no exclusion.

    After an operator's reply the chat is still in the queue, so the operator who just
    answered usually gets the very same chat back ("same chat again" bug).
    """

    name = "legacy"

    @property
    def legacy(self) -> bool:
        return True

    def eligible(self, chat: ChatView, operator_id: int, now: float) -> bool:
        return chat.state in LEGACY_ASSIGNABLE_STATES


class ExcludeLast(ChatOrderedPolicy):
    """The seed's fix: oldest waiting chat whose ``last_operator_id`` is someone else."""

    name = "exclude_last"


@dataclass(repr=False)
class ExcludeLastFallback(ChatOrderedPolicy):
    """The fix, but a chat that waited ``fallback_after`` seconds may go back to its last operator.

    Guards against starvation when the last operator is the only one online.
    """

    fallback_after: float = 300.0
    name: ClassVar[str] = "exclude_last_fallback"

    def __post_init__(self) -> None:
        if not (self.fallback_after >= 0):  # as SQL: CL006
            raise InvalidArgument(f"fallback_after must be >= 0 seconds, got {self.fallback_after!r}")

    @property
    def own_params(self) -> dict[str, float]:
        return {"fallback_after": self.fallback_after}

    def eligible(self, chat: ChatView, operator_id: int, now: float) -> bool:
        if chat.state not in ASSIGNABLE_STATES:
            return False
        return chat.last_operator_id != operator_id or now - chat.waiting_since >= self.fallback_after


def random_rank(salt: int, chat_id: int) -> str:
    """The order key of ``random``: ``md5('<salt>:<chat_id>')`` as hex, same as SQL's md5()."""
    return hashlib.md5(f"{salt}:{chat_id}".encode()).hexdigest()


class RandomChoice(ChatOrderedPolicy):
    """A uniformly random eligible chat (fix's eligibility), drawn from the snapshot's salt.

    Priority classes still come first; SLA ordering does not apply (it replaces waiting time,
    which random ignores).
    """

    name = "random"

    def order(self, chat: ChatView, snapshot: Snapshot, operator_id: int) -> tuple:
        return (-chat.priority, random_rank(snapshot.salt, chat.chat_id), chat.chat_id)


class OperatorOrderedPolicy(Policy):
    """Greedy matching: operators in key order each take the oldest chat they may have."""

    fix_rule = ExcludeLast()

    @abstractmethod
    def key(self, op: OperatorView) -> tuple:
        """Smaller key = served first."""

    def matching(self, snapshot: Snapshot) -> dict[int, int]:
        """operator id -> chat id for every operator the matching serves (each takes the first chat
        it may have in queue order, one held for it first)."""
        routing, now = self.routing, snapshot.now
        queue = sorted((c for c in snapshot.chats if c.state in ASSIGNABLE_STATES), key=routing.queue_key)
        taken: set[int] = set()
        result: dict[int, int] = {}
        for op in sorted((o for o in snapshot.operators if o.has_capacity and routing.takes_more(o)), key=self.key):
            if routing.sticky_for is not None:  # chats held for this operator come first
                queue.sort(key=lambda c: (routing.mine_first(c, snapshot, op.operator_id), *routing.queue_key(c)))
            for chat in queue:
                if chat.chat_id not in taken and self.fix_rule.eligible(chat, op.operator_id, now) \
                        and routing.serves(chat, op, snapshot):
                    taken.add(chat.chat_id)
                    result[op.operator_id] = chat.chat_id
                    break
            if len(taken) == len(queue):
                break
        return result

    def pick(self, snapshot: Snapshot, operator_id: int) -> int | None:
        """What :meth:`matching` gives the requester, computed only as far as the requester.

        The operators behind it in key order cannot change its share, so only those ahead are
        played, in order (a heap, not a sort of the whole floor), and the replay stops as soon
        as the queue is used up: O(operators + taken x log operators) instead of a sort plus
        a scan of the queue per operator.  With known-agent holds (whose queue order depends on
        the operator) the full matching is replayed.
        """
        requester = self._requester(snapshot, operator_id)
        if requester is None:
            return None
        routing, now = self.routing, snapshot.now
        if routing.sticky_for is not None:
            return self.matching(snapshot).get(operator_id)
        queue = sorted((c for c in snapshot.chats if c.state in ASSIGNABLE_STATES), key=routing.queue_key)
        eligible = self.fix_rule.eligible

        def first_for(op: OperatorView, taken: set[int]) -> ChatView | None:
            for chat in queue:
                if chat.chat_id not in taken and eligible(chat, op.operator_id, now) and routing.serves(chat, op, snapshot):
                    return chat
            return None

        if first_for(requester, set()) is None:  # nothing it may take at all, whoever goes first
            return None
        mine = self.key(requester)
        ahead = [(k, i) for i, o in enumerate(snapshot.operators)
                 if o.operator_id != operator_id and o.has_capacity and routing.takes_more(o) and (k := self.key(o)) < mine]
        heapq.heapify(ahead)
        taken: set[int] = set()
        while ahead and len(taken) < len(queue):
            got = first_for(snapshot.operators[heapq.heappop(ahead)[1]], taken)
            if got is not None:
                taken.add(got.chat_id)
        if len(taken) == len(queue):
            return None
        got = first_for(requester, taken)
        return None if got is None else got.chat_id


class RoundRobin(OperatorOrderedPolicy):
    """Operators take turns: whoever was assigned least recently goes first."""

    name = "round_robin"

    def key(self, op: OperatorView) -> tuple:
        return (_nulls_first(op.last_assigned_at), op.operator_id)


class LeastLoaded(OperatorOrderedPolicy):
    """The operator with the fewest open chats goes first (then round robin)."""

    name = "least_loaded"

    def key(self, op: OperatorView) -> tuple:
        return (op.active_chats, _nulls_first(op.last_assigned_at), op.operator_id)


class LongestIdle(OperatorOrderedPolicy):
    """The operator whose last activity is oldest goes first (contact-centre 'longest idle agent')."""

    name = "longest_idle"

    def key(self, op: OperatorView) -> tuple:
        return (_nulls_first(op.last_activity_at), op.operator_id)


_FACTORIES: dict[str, Callable[..., Policy]] = {
    "legacy": Legacy,
    "exclude_last": ExcludeLast,
    "exclude_last_fallback": ExcludeLastFallback,
    "round_robin": RoundRobin,
    "least_loaded": LeastLoaded,
    "longest_idle": LongestIdle,
    "random": RandomChoice,
}
assert tuple(_FACTORIES) == POLICY_NAMES


def make_policy(name: str, routing: Routing = NO_ROUTING, **params: float) -> Policy:
    """Build a policy by its name, with the run's routing rules; raise :class:`UnknownPolicy`
    with the valid names otherwise."""
    factory = _FACTORIES.get(name)
    if factory is None and name in VARIANT_NAMES:
        from sim.variants import VARIANTS  # at call time: the variants build on this module

        factory = VARIANTS[name]
    if factory is None:
        raise UnknownPolicy(f"unknown policy {name!r}; expected one of: {', '.join(POLICY_NAMES)} "
                            f"(or a buggy variant: {', '.join(VARIANT_NAMES)})")
    try:
        policy = factory(**params)
    except TypeError:
        allowed = ", ".join(getattr(factory, "__dataclass_fields__", {}).keys() - {"name"}) or "none"
        raise UnknownPolicy(
            f"policy {name!r} does not take parameters {sorted(params)}; it takes: {allowed}"
        ) from None
    if routing is not NO_ROUTING:
        policy.routing = routing
    bind = getattr(policy, "bind", None)
    if bind is not None:
        bind()
    return policy


def parse_policy_list(text: str | Iterable[str]) -> list[str]:
    """Split ``"a,b,c"`` (or a list) into validated policy names, keeping order, dropping repeats."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise UnknownPolicy(f"no policy given; expected one or more of: {', '.join(POLICY_NAMES)}")
    for n in names:
        if n not in KNOWN_NAMES:
            raise UnknownPolicy(f"unknown policy {n!r}; expected one of: {', '.join(POLICY_NAMES)} "
                                f"(or a buggy variant: {', '.join(VARIANT_NAMES)})")
    return list(dict.fromkeys(names))

