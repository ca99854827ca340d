"""Push mode's dispatcher on the real database: sleep on LISTEN, dispatch when the queue may have changed.

Why a process of its own and no polling: in push mode nobody asks for work — the system
offers it.  The dispatcher keeps one session that ``LISTEN``s on ``chatlab_work`` (021's
trigger sends it, with the schema as payload, when a chat enters the queue, a chat leaves an
operator or an operator logs in, from sessions that ``SET chatlab.notify = on``) and answers
each wake with one ``dispatch_waiting_chats`` call, which goes round the operators in the
simulation's order (:func:`sim.dispatch.dispatch`).  A periodic dispatch every
``safety_s`` seconds is only the safety net for a lost wake (a session that forgot to opt
in, a NOTIFY sent while the dispatcher reconnected) and for rules that change with time
alone (``fallback_after``, ``relax_after``, a held chat's window running out).

Several dispatchers at once are safe: each dispatch locks the one rotation row, and every
claim is the assign function's ``SKIP LOCKED`` as in pull mode.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from chatlab.db.client import ChatDB, Observer
from chatlab.db.queries import query
from sim.errors import InvalidArgument

#: The longest sleep between dispatches without a wake (s).
DEFAULT_SAFETY_S = 5.0


class Dispatcher:
    """Dispatch the queue of ``schema`` whenever it may have changed, until ``stop`` is set."""

    def __init__(self, conninfo: str, schema: str = "public", policy: str = "exclude_last", *,
                 rules: Mapping[str, Any] | None = None, safety_s: float = DEFAULT_SAFETY_S,
                 on_assigned: Callable[[int, int], None] | None = None,
                 application_name: str = "chatlab-dispatcher", salt: Callable[[], int] | None = None,
                 observer: Observer | None = None) -> None:
        if not (0 < safety_s <= 3600):
            raise InvalidArgument(f"dispatcher safety interval must be in (0, 3600] seconds, got {safety_s!r}")
        self.schema, self.policy, self.rules = schema, policy, dict(rules or {})
        self.safety_s, self.on_assigned = float(safety_s), on_assigned
        self.salt = salt  # random's salt, drawn per dispatch (None: the rules' fixed one)
        self.db = ChatDB(conninfo, schema, application_name=application_name, observer=observer)
        self.listener = ChatDB(conninfo, schema, application_name=f"{application_name}-listen")
        self.listener.conn.execute(query("listen_work"))
        self.assigned = 0
        self.dispatches = 0
        self.wakes = 0  # dispatches a NOTIFY for this schema caused (the rest are the safety net)

    def dispatch_once(self) -> list[tuple[int, int]]:
        rules = self.rules if self.salt is None else {**self.rules, "salt": self.salt()}
        made = self.db.dispatch_waiting_chats(self.policy, **rules)
        self.dispatches += 1
        self.assigned += len(made)
        if self.on_assigned is not None:
            for op, chat in made:
                self.on_assigned(op, chat)
        return made

    def _wait(self, timeout: float) -> bool:
        """Sleep until a wake for this schema (True) or ``timeout`` (False); drain what queued up."""
        deadline = time.monotonic() + timeout
        woken = False
        while not woken:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for note in self.listener.conn.notifies(timeout=min(left, 0.5), stop_after=1):
                woken = woken or note.payload == self.schema
        for note in self.listener.conn.notifies(timeout=0):  # several changes, one dispatch
            woken = woken or note.payload == self.schema
        return woken

    def run(self, stop: threading.Event) -> int:
        """Dispatch now, then on every wake and at least every ``safety_s``; return the assignments made."""
        try:
            while not stop.is_set():
                self.dispatch_once()
                due = time.monotonic() + self.safety_s
                woken = False
                while not woken and not stop.is_set() and time.monotonic() < due:
                    woken = self._wait(min(0.5, max(0.0, due - time.monotonic())))  # short: see stop soon
                self.wakes += woken
        finally:
            self.close()
        return self.assigned

    def close(self) -> None:
        self.db.close()
        self.listener.close()
