"""Operators in an operator-ordered policy's key order, kept sorted as they change.

Why: ``round_robin``, ``least_loaded`` and ``longest_idle`` give the requester what a greedy
matching over every operator with free capacity gives it, and at floor scale most asks come
from operators far down that order, who surely get nothing.  Without routing rules (no skills,
weights 1, no holds, no fair limit) an operator ahead in key order fails to take a chat only
when every chat still untaken was last handled by it, and then the next one takes one: so once
``2 x waiting`` operators are ahead of the requester, the queue is used up before its turn.
:meth:`OperatorRank.ahead` counts them in O(log n) (a sorted list, updated for the operators
whose row changed since the last ask) instead of replaying the matching; for the few who are
near the front, :func:`replay` plays the matching over just the operators ahead of them.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any

from sim.policies import LeastLoaded, LongestIdle, Policy, RoundRobin
from sim.routing import NO_ROUTING

#: Built-in operator-ordered policies (exact types: a variant may rank or match differently).
_RANKED_POLICIES = frozenset({RoundRobin, LeastLoaded, LongestIdle})


class OperatorRank:
    """The keys (``policy.key(view)``) of the operators with free capacity, sorted."""

    def __init__(self, policy: Any, operators: dict[int, Any]) -> None:
        self.policy_type = type(policy)
        self._key = policy.key
        self._keys: list[tuple] = []
        self._key_of: dict[int, tuple] = {}
        for op in operators.values():
            self.update(op)

    def update(self, op: Any) -> None:
        """Re-file one operator after its row changed."""
        old = self._key_of.pop(op.id, None)
        if old is not None:
            del self._keys[bisect_left(self._keys, old)]
        if op.has_capacity:
            key = self._key(op.view())
            self._key_of[op.id] = key
            insort(self._keys, key)

    def ahead(self, op: Any) -> int:
        """How many operators with free capacity come before ``op`` in key order."""
        return bisect_left(self._keys, self._key(op.view()))

    def first(self, n: int) -> list[int]:
        """The ids of the first ``n`` operators with free capacity in key order (every built-in
        key ends with the operator id)."""
        return [key[-1] for key in self._keys[:n]]


def replay(ahead: list[int], requester: int, waiting: list[Any]) -> int | None:
    """The greedy matching without routing rules, played only as far as the requester.

    ``waiting``: the waiting chats in queue order; ``ahead``: the operators before the requester,
    in key order.  Each takes the first untaken chat it did not handle last; the requester gets
    what is left for it the same way (``OperatorOrderedPolicy.pick``, for plain chats).
    """
    taken: set[int] = set()
    for op_id in (*ahead, requester):
        for chat in waiting:
            if chat.id not in taken and chat.last_operator_id != op_id:
                if op_id == requester:
                    return chat.id
                taken.add(chat.id)
                break
        if len(taken) == len(waiting):
            return None
    return None


class RankedAsks:
    """The rank index's side of :class:`sim.system.ChatSystem` (a mixin: it reads the system's
    operators, waiting chats and the set of operators changed since the index last looked)."""

    operators: dict[int, Any]
    _wa: dict[int, Any]
    _wa_special: int
    _dirty_ops: set[int]
    _rank: OperatorRank | None

    def _rank_index(self, pol: Policy) -> OperatorRank | None:
        """For an operator-ordered built-in without routing rules and with plain waiting chats (no
        skill, weight 1): the up-to-date rank index (sim/oprank.py); None when the rules apply and
        the policy must replay the matching itself."""
        if self._wa_special or type(pol) not in _RANKED_POLICIES or \
                (pol.routing is not NO_ROUTING and pol.routing != NO_ROUTING):
            return None
        rank = self._rank
        if rank is None or rank.policy_type is not type(pol):
            rank = self._rank = OperatorRank(pol, self.operators)
            self._dirty_ops.clear()
        elif self._dirty_ops:
            for op_id in self._dirty_ops:
                rank.update(self.operators[op_id])
            self._dirty_ops.clear()
        return rank

    def ask_candidates(self, policy: Policy) -> list[int] | None:
        """The operators an ask could give a chat to now, when that is cheap to tell: for an
        operator-ordered built-in without routing rules, the first ``2 x waiting`` operators with
        room in key order (any other asks surely get None); None means anyone might."""
        rank = self._rank_index(policy)
        return None if rank is None else rank.first(2 * len(self._wa))
