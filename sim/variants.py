"""Buggy variants: policies that reproduce routing bugs real products' users reported, the
way ``legacy`` reproduces the seed's ("the same chat again").

Why in the domain: a regression suite (``chatlab bugs``) must show that the lab *catches*
each bug — the variant breaks the bound that detects it — and that the lab's own rules
pass the same bound.  Each variant is a small change to one of :mod:`sim.policies`' policies
and has its SQL twin in ``assign_chat_to_operator`` (migration 020), checked by the same
agreement tests as every policy.  They are never in a default comparison
(:data:`sim.policies.POLICY_NAMES`); ``--policies`` accepts them by name.

======================== ================================= ====================================
variant                  reported bug                      the change
======================== ================================= ====================================
least_loaded_lifetime    Rocket.Chat #13134                least_loaded counting every chat
                                                           an operator was ever given, not the
                                                           ones it holds: back from vacation,
                                                           it gets every new chat
least_loaded_by_creation Rocket.Chat #6802                 least_loaded breaking ties by
                                                           operator id (creation order), not
                                                           by last assignment: the same
                                                           operator always goes first
newest_first             Chatwoot #10583                   when capacity frees up a newer chat
                                                           jumps ahead of the queued one
                                                           (the queue read newest first)
sticky_offline           Chatwoot #4158 / #7204 / #9587    a returning user's chat is held for
                                                           the former operator even when it is
                                                           offline or full, and waits there
exclude_last_unlocked    Chatwoot #11034, Rocket.Chat      the fix without the operator-row
                         #18217                            lock: concurrent requests for one
                                                           operator overshoot its capacity (a
                                                           race: the same decisions here, only
                                                           the database can show it)
======================== ================================= ====================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sim.policies import (
    ChatView,
    ExcludeLast,
    LeastLoaded,
    OperatorView,
    Policy,
    Snapshot,
    _nulls_first,
)


class LeastLoadedLifetime(LeastLoaded):
    """Rocket.Chat #13134: "least amount" = fewest chats *ever* assigned (then round robin)."""

    name = "least_loaded_lifetime"

    def key(self, op: OperatorView) -> tuple:
        return (op.assignments, _nulls_first(op.last_assigned_at), op.operator_id)


class LeastLoadedByCreation(LeastLoaded):
    """Rocket.Chat #6802: fewest open chats, ties to the operator created first (no rotation)."""

    name = "least_loaded_by_creation"

    def key(self, op: OperatorView) -> tuple:
        return (op.active_chats, op.operator_id)


class NewestFirst(ExcludeLast):
    """Chatwoot #10583: the fix's eligibility, the newest waiting chat first (within its class)."""

    name = "newest_first"

    def order(self, chat: ChatView, snapshot: Snapshot, operator_id: int) -> tuple:
        return (-chat.priority, -chat.waiting_since, -chat.chat_id)


class StickyOffline(ExcludeLast):
    """Chatwoot #4158: known-agent holds ignore whether the former operator is online or full."""

    name = "sticky_offline"

    def bind(self) -> None:
        """Called by :func:`sim.policies.make_policy` once the routing is set."""
        self.routing = dataclasses.replace(self.routing, hold_offline=True)


class ExcludeLastUnlocked(ExcludeLast):
    """Chatwoot #11034 / Rocket.Chat #18217: the fix's decisions; its SQL twin takes no operator lock."""

    name = "exclude_last_unlocked"


VARIANTS: dict[str, Callable[..., Policy]] = {
    "least_loaded_lifetime": LeastLoadedLifetime,
    "least_loaded_by_creation": LeastLoadedByCreation,
    "newest_first": NewestFirst,
    "sticky_offline": StickyOffline,
    "exclude_last_unlocked": ExcludeLastUnlocked,
}
