"""Push mode's dispatcher: offer the queue to the operators in turn until nobody takes anything.

One rule for both sides (``chatlab/db/migrations/021_push_dispatch.sql``,
``dispatch_waiting_chats``): while some chat waits, go round the operators in id order,
starting after the last one that took a chat (the rotation point survives between
dispatches), and ask the assign function for each online one with room — the same policy,
exclusion, capacity and routing rules as a pull; a round in which nobody takes anything ends
the dispatch.  So push is pull driven by the system instead of by the operators' clients, and
an operator-ordered policy still routes each chat to the operator it prefers (the others get
nothing from ``pick`` while it can take the chat).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Any

#: Where the rotation point lives on a :class:`sim.system.ChatSystem` (SQL: ``dispatch_state``).
_AFTER = "dispatch_after"


def dispatch(system: Any, policy: Any, *, now: float | None = None, salt: int | Callable[[], int] = 0,
             **rules: Any) -> list[tuple[int, int]]:
    """Dispatch the queue of ``system`` (a :class:`sim.system.ChatSystem`); return (operator, chat) per
    assignment, in the order made.

    ``salt`` is ``random``'s salt, or a function drawing one per ask (the model draws each from
    its seeded stream); ``rules`` are :meth:`ChatSystem.assign`'s routing keywords.
    """
    made: list[tuple[int, int]] = []
    after = getattr(system, _AFTER, None)
    progress = True
    while progress and system.has_waiting():
        progress = False
        ids = list(system.operators)  # id order (ids are handed out increasing)
        cut = bisect_right(ids, 0 if after is None else after)
        for op in ids[cut:] + ids[:cut]:
            if not system.has_capacity(op):
                continue
            chat = system.assign(op, policy, now=now, salt=salt() if callable(salt) else salt, **rules)
            if chat is not None:
                made.append((op, chat))
                after, progress = op, True
    setattr(system, _AFTER, after)
    return made
