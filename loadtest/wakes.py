"""One wake-up line per Locust process: 022's ``chatlab_news`` notifications turned into gevent events.

Why: the model's operator is woken the instant a chat is given to it, leaves it, or gets a user
message while it holds it, and its real user the instant the operator answers; clients that
poll the database see those moments up to a poll period late, and the load test multiplies
that lag by its time scale.  So one greenlet per process keeps a session on ``LISTEN
chatlab_news`` and sets the :class:`gevent.event.Event` a waiting client registered, only the
ones the model would wake: an operator's worker for ``a`` (a chat given to it), both its loops
for ``f`` (a chat left it: a free slot) and ``w`` (a user wrote to a chat it holds), a real user
for ``c`` (its chat was answered).  Waking a poller needlessly is not harmless: every extra ask
is a chance to take a chat another operator's client was about to ask for.  The
clients still look at the database every poll interval as a safety net (a notification sent
while this session reconnected is lost, and nothing else would repeat it).

Imports psycopg (through the client): import :mod:`locust` first (the locustfile does).
"""

from __future__ import annotations

import logging
from typing import Any

import gevent
from gevent.event import Event

from chatlab.db.client import ChatDB

log = logging.getLogger("chatlab.loadtest")


class Wakes:
    """The process's ``chatlab_news`` listener and the events the clients wait on."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.schema = schema
        self.prefix = f"{schema}:"
        self.db = ChatDB(dsn, schema, application_name="chatlab-loadtest-wakes")
        self.db.listen_news()
        self.operators: dict[int, list[Event]] = {}
        self.chats: dict[int, Event] = {}
        self.received = 0
        self._stop = False
        self.greenlet: gevent.Greenlet | None = None

    # registration ----------------------------------------------------------------------
    def operator(self, operator_id: int, worker: Event, poller: Event) -> None:
        """Wake the operator's worker when it gets a chat, both loops when a chat leaves it or its user writes."""
        self.operators[int(operator_id)] = [worker, poller]

    def chat(self, chat_id: int) -> Event:
        """An event set when an operator answers this chat (forget it with :meth:`forget`)."""
        return self.chats.setdefault(int(chat_id), Event())

    def forget(self, chat_id: int) -> None:
        self.chats.pop(int(chat_id), None)

    # the listener ----------------------------------------------------------------------
    def deliver(self, payload: str) -> None:
        """Set the events one notification is for (another schema's, or a malformed one, is ignored)."""
        if not payload.startswith(self.prefix):
            return
        kind, _, ident = payload[len(self.prefix):].partition(":")
        try:
            key = int(ident)
        except ValueError:
            return
        self.received += 1
        if kind in ("a", "f", "w"):
            loops = self.operators.get(key)
            if loops is not None:
                for event in loops[:1] if kind == "a" else loops:
                    event.set()
        elif kind == "c" and key in self.chats:
            self.chats[key].set()

    def start(self) -> None:
        self.greenlet = gevent.spawn(self._listen)

    def _listen(self) -> None:
        while not self._stop:
            try:
                for note in self.db.conn.notifies(timeout=0.5):
                    self.deliver(note.payload)
            except Exception:  # noqa: BLE001 - the clients' safety-net polls carry on; reconnect
                if self._stop:
                    return
                log.exception("chatlab_news listener; reconnecting")
                gevent.sleep(0.2)
                try:
                    self.db.close()
                    self.db = ChatDB(self.db.conninfo, self.schema, application_name="chatlab-loadtest-wakes")
                    self.db.listen_news()
                except Exception:  # noqa: BLE001
                    log.exception("chatlab_news listener: reconnect failed")

    def stop(self) -> Any:
        self._stop = True
        if self.greenlet is not None:
            self.greenlet.kill(block=True, timeout=2)
        self.db.close()
