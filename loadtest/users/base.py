"""``ChatUser``: the abstract Locust user that owns one connection of the lab's typed client.

As Locust's own ``HttpUser`` owns its ``client``, a ``ChatUser`` opens a
:class:`~chatlab.db.client.ChatDB` in ``on_start`` and closes it in ``on_stop``; every call
on it is reported to Locust (:class:`~loadtest.reporting.LocustReporter`).  Subclasses set
``role`` (the connection's ``application_name`` and the requests' context) and add their
tasks; :meth:`connect` opens a second connection for a user with a second greenlet.
An exception a user raises fails the run (``loadtest/usererrors.py``).
"""

from __future__ import annotations

from typing import ClassVar

from locust import User, constant

from chatlab.db.client import ChatDB
from loadtest.reporting import LocustReporter
from loadtest.usererrors import inject_fault
from loadtest.runtime import current
from loadtest.target_client import TargetDB


class ChatUser(User):
    abstract = True
    wait_time = constant(0)
    role: ClassVar[str] = "user"

    def on_start(self) -> None:
        inject_fault(f"{self.role}.on_start")  # tests only ($CHATLAB_LOADTEST_FAULT): an exception here fails the run
        self.db = self.connect()

    def on_stop(self) -> None:
        db = getattr(self, "db", None)
        if db is not None:
            db.close()

    def connect(self) -> ChatDB:
        """A new connection to the run's schema, reporting every call to this user's Locust environment
        (an outside target's flows through :class:`~loadtest.target_client.TargetDB`, same calls)."""
        run = current()
        settings = run.settings
        # the worker's index in the name: pg_stat_activity (and pg_locks' claims) tell which
        # Locust process holds which connection, e.g. after a worker died
        kwargs = {"application_name": f"chatlab-{self.role}-w{run.worker_index}",
                  "observer": LocustReporter(self.environment, {"role": self.role})}
        if run.target is not None:
            return TargetDB(settings.dsn, settings.schema, run.target, **kwargs)
        db = ChatDB(settings.dsn, settings.schema, **kwargs)
        db.wake_dispatchers()  # this session's changes NOTIFY the dispatcher (021) and the clients (022)
        return db
