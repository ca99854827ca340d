"""The routing rules every policy applies: skills, priority classes, SLA order, known-agent
(sticky) routing, the fair-distribution limit and capacity by weight.

Why one object: these are the rules real products layer on top of "which chat next"
(Genesys' skill rings, Zendesk's priorities and SLA targets, TaskRouter's Known Agent
Routing, Chatwoot's ``fair_distribution_limit``, Salesforce's capacity weights).  Every policy
of :mod:`sim.policies` consults the same :class:`Routing`, and the SQL function
``assign_chat_to_operator`` implements the same rules with the same choices
(``docs/semantics.md``, "Routing"):

* **capacity by weight**: a chat costs its topic's ``weight`` units of an operator's
  ``max_chats``; an operator may take it only if it fits;
* **skills**: an operator may take a chat whose skill it has (or one without); after
  ``relax_after`` seconds in the queue, any operator may (skill relaxation);
* **known agent** (``sticky_for``): a returning user's *new* chat — never handled yet — is
  reserved for the operator of the user's previous chat for ``sticky_for`` seconds after it
  was opened, while that operator is online and the chat fits: others may not take it, and
  that operator is offered it first; an offline or full operator holds nothing;
* **fair-distribution limit** (``fair_limit``, ``fair_window``): an operator who was given
  ``fair_limit`` chats in the last ``fair_window`` seconds gets no more for now;
* **order**: priority class (higher first), then the policy's own order — or, with
  ``sla_targets``, the deadline ``waiting_since + target[class]`` instead of waiting time.

Without any of these (:data:`NO_ROUTING`) the rules change nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.errors import InvalidArgument

if TYPE_CHECKING:
    from sim.policies import ChatView, OperatorView, Snapshot

#: The longest relaxation delay, SLA target, sticky window or fair window (s), as SQL checks.
MAX_ROUTING_S = 1e9


def _seconds(name: str, value: float | None) -> None:
    if value is not None and not (0 <= value <= MAX_ROUTING_S):
        raise InvalidArgument(f"{name} must be from 0 to 1e9 seconds, got {value!r}")


@dataclass(frozen=True)
class Routing:
    """The rules (see the module docstring); ``None`` turns a rule off."""

    relax_after: float | None = None
    sla_targets: tuple[float, ...] | None = None  # seconds per priority class (index = class)
    sticky_for: float | None = None
    fair_limit: int | None = None
    fair_window: float = 3600.0
    #: the ``sticky_offline`` variant's bug (Chatwoot #4158): hold for an offline or full operator too
    hold_offline: bool = False

    def __post_init__(self) -> None:
        _seconds("relax_after", self.relax_after)
        if self.sla_targets is not None and not all(0 <= t <= MAX_ROUTING_S for t in self.sla_targets):
            raise InvalidArgument(f"SLA targets must be from 0 to 1e9 seconds, got {self.sla_targets!r}")
        _seconds("sticky_for", self.sticky_for)
        _seconds("fair_window", self.fair_window)
        if self.fair_limit is not None and (isinstance(self.fair_limit, bool) or not isinstance(self.fair_limit, int)
                                            or self.fair_limit < 1):
            raise InvalidArgument(f"fair_limit must be an integer >= 1, got {self.fair_limit!r}")

    @property
    def params(self) -> dict[str, Any]:
        """The rules that are on (for reports and the SQL call)."""
        out: dict[str, Any] = {}
        if self.relax_after is not None:
            out["relax_after"] = self.relax_after
        if self.sla_targets is not None:
            out["sla_targets"] = list(self.sla_targets)
        if self.sticky_for is not None:
            out["sticky_for"] = self.sticky_for
        if self.fair_limit is not None:
            out.update(fair_limit=self.fair_limit, fair_window=self.fair_window)
        return out

    # -- operators ---------------------------------------------------------------------
    def takes_more(self, op: OperatorView) -> bool:
        """Under the fair-distribution limit (and free capacity is the caller's check)."""
        return self.fair_limit is None or op.recent_assignments < self.fair_limit

    # -- chats -------------------------------------------------------------------------
    def reserved_for(self, chat: ChatView, snapshot: Snapshot) -> int | None:
        """The operator a new chat is held for (known-agent routing), or None."""
        if self.sticky_for is None or chat.sticky_operator_id is None or chat.last_operator_id is not None:
            return None
        if chat.created_at is None or chat.created_at <= snapshot.now - self.sticky_for:  # SQL's form
            return None
        agent = snapshot.operator(chat.sticky_operator_id)
        if agent is None:
            return None
        if not self.hold_offline and (not agent.online or agent.active_chats + chat.weight > agent.max_chats):
            return None
        return agent.operator_id

    def serves(self, chat: ChatView, op: OperatorView, snapshot: Snapshot) -> bool:
        """May ``op`` take ``chat`` under the rules: it fits, the skill, nobody else's reservation?"""
        if op.active_chats + chat.weight > op.max_chats:
            return False
        if not (chat.skill is None or chat.skill in op.skills
                or (self.relax_after is not None and snapshot.now - chat.waiting_since >= self.relax_after)):
            return False
        held = self.reserved_for(chat, snapshot)
        return held is None or held == op.operator_id

    def deadline(self, chat: ChatView) -> float:
        targets = self.sla_targets or ()
        return chat.waiting_since + (targets[chat.priority] if chat.priority < len(targets) else math.inf)

    def queue_key(self, chat: ChatView) -> tuple:
        """The queue order: (deadline, id) with SLA targets, else (priority class first, waiting time, id)."""
        if self.sla_targets is not None:
            return (self.deadline(chat), chat.chat_id)
        return (-chat.priority, chat.waiting_since, chat.chat_id)

    def mine_first(self, chat: ChatView, snapshot: Snapshot, operator_id: int) -> int:
        """0 for a chat held for ``operator_id`` (offered to it first), else 1."""
        return 0 if self.sticky_for is not None and self.reserved_for(chat, snapshot) == operator_id else 1


#: No skills, no priorities, no SLA, no sticky, no limit: the routing of a scenario that has none.
NO_ROUTING = Routing()
#: The rules' names (the keys of :attr:`Routing.params`, the SQL function's parameters).
ROUTING_RULES: tuple[str, ...] = ("relax_after", "sla_targets", "sticky_for", "fair_limit", "fair_window")
