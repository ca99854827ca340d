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
