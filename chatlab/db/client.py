"""``ChatDB``: the one typed client of the chat schema, for the CLI, the tests and the Locust users.

Why thin: the system's rules live in SQL (that is what the lab tests); the client only runs
named queries (``queries.sql``; never string-built SQL) with bound parameters, in
autocommit (each call is one transaction, so ``FOR UPDATE SKIP LOCKED`` locks end with the
call), and turns the functions' SQLSTATEs into the lab's error classes (:mod:`sim.errors`,
via :func:`chatlab.db.errors.translate`).

Every call can be *observed*: an ``observer`` receives ``(name, elapsed_ms, rows, error,
empty)`` after each one.  That is how the load test reports to Locust (``loadtest.reporting``
fires Locust request events from it) without a second client.  ``empty`` is true when a call
whose NULL means "nothing to do" (an assign with nothing eligible, no stuck chats) found
nothing.  A broken connection is reopened on the next call.

    with ChatDB(uri, schema="lab") as db:
        op = db.create_operator("ann")
        chat = db.real_user_message(42, "hello")
        assert db.assign_chat_to_operator(op) == chat
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from chatlab.db.clock import EPOCH, to_seconds, to_timestamp
from chatlab.db.errors import DatabaseUnavailable, translate
from chatlab.db.migrate import check_schema
from chatlab.db.queries import query
from sim.errors import ChatLabError, UnknownChat
from sim.statemachine import State

#: ``observer(name, elapsed_ms, rows, error, empty)`` after every call (see the module docstring).
Observer = Callable[[str, float, int, "ChatLabError | None", bool], None]


@dataclass(frozen=True)
class StuckChat:
    chat_id: int
    operator_id: int
    assigned_at: datetime
    stuck_seconds: float


@dataclass(frozen=True)
class Check:
    """One line of ``chat_state_verification()``."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class HeldChat:
    """A chat an operator holds, as its client sees it."""

    chat_id: int
    pending: bool  # the user's last message is not answered yet
    ready_at: datetime | None = None  # since when it could be worked on: the later of its assignment and that message


@dataclass(frozen=True)
class Inbox:
    """What an operator's client sees: logged in?, and the chats it holds (oldest pending first)."""

    online: bool
    held: tuple[HeldChat, ...]

    @property
    def pending(self) -> list[HeldChat]:
        return [c for c in self.held if c.pending]


class ChatDB:
    """One autocommit connection to the chat schema ``schema``."""

    def __init__(self, conninfo: str, schema: str = "public", *, application_name: str = "chatlab",
                 observer: Observer | None = None, connect_timeout: float = 10.0) -> None:
        self.conninfo = conninfo
        self.schema = check_schema(schema)
        self.application_name = application_name
        self.observer = observer
        self.connect_timeout = connect_timeout
        self.conn: psycopg.Connection = self._connect()

    # -- plumbing ----------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection:
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, application_name=self.application_name,
                                   connect_timeout=max(1, int(self.connect_timeout)))
        except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:  # unreachable, or not a connection string
            raise DatabaseUnavailable(f"cannot connect to the database: {' '.join(str(exc).split())}") from None
        try:
            conn.execute(query("set_search_path", schema=self.schema))
        except psycopg.Error as exc:
            conn.close()
            raise translate(exc) from exc
        return conn

    def __enter__(self) -> ChatDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def run(self, name: str, params: Mapping[str, Any] | None = None, *, as_dict: bool = False,
            nothing_if_empty: bool = False, **identifiers: str) -> list[Any]:
        """Run the named query; return its rows (dicts with ``as_dict``).

        ``nothing_if_empty``: an empty result (no row, or one all-NULL row) is this call's
        "nothing to do" (reported to the observer as ``empty``).
        """
        return self.run_statement(name, query(name, **identifiers), params, as_dict=as_dict,
                                  nothing_if_empty=nothing_if_empty)

    def run_statement(self, name: str, statement: Any, params: Mapping[str, Any] | None = None, *,
                      as_dict: bool = False, nothing_if_empty: bool = False) -> list[Any]:
        """:meth:`run` for a statement named elsewhere: an outside target's flow (``loadtest.target``),
        given as its own file wrote it, observed under ``name`` like every call."""
        if self.conn.closed or self.conn.broken:
            self.conn = self._connect()
        start = time.perf_counter()
        try:
            with self.conn.cursor(row_factory=dict_row) if as_dict else self.conn.cursor() as cur:
                cur.execute(statement, params)
                rows = cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            error = translate(exc)
            self._observe(name, start, 0, error, False)
            raise error from exc
        empty = nothing_if_empty and (not rows or all(v is None for v in (rows[0].values() if as_dict else rows[0])))
        self._observe(name, start, len(rows), None, empty)
        return rows

    def _observe(self, name: str, start: float, rows: int, error: ChatLabError | None, empty: bool) -> None:
        if self.observer is not None:
            self.observer(name, (time.perf_counter() - start) * 1000.0, rows, error, empty)

    def _scalar(self, name: str, params: Mapping[str, Any] | None = None, *, nothing_if_empty: bool = False) -> Any:
        rows = self.run(name, params, nothing_if_empty=nothing_if_empty)
        return rows[0][0] if rows else None

    def _rows(self, text: str, params: tuple | Mapping[str, Any] = (), *, as_dict: bool = False) -> list[Any]:
        """Ad-hoc SQL for tests only (the lab's own code runs named queries, :meth:`run`)."""
        try:
            with self.conn.cursor(row_factory=dict_row) if as_dict else self.conn.cursor() as cur:
                cur.execute(text.encode(), params)
                return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise translate(exc) from exc

    # -- clock -------------------------------------------------------------------------
    def set_clock(self, t: float | None) -> None:
        """Pin ``chatlab_now()`` to lab second ``t`` for this connection (None: real time)."""
        self.run("set_clock", {"at": "" if t is None else to_timestamp(t).isoformat()})

    def now(self) -> float:
        """``chatlab_now()`` in lab seconds."""
        return float(self._scalar("lab_now"))

    def epoch(self) -> datetime:
        """The database's ``chatlab_epoch()`` (the same instant as :data:`chatlab.db.clock.EPOCH`)."""
        return self._scalar("lab_epoch")

    def server_clock(self) -> datetime:
        """The server's wall clock (``clock_timestamp()``)."""
        return self._scalar("server_clock")

    # -- operators ---------------------------------------------------------------------
    def create_operator(self, name: str, max_chats: int = 1, online: bool = True, skills: Sequence[str] = ()) -> int:
        return int(self._scalar("create_operator", {"name": name, "max_chats": max_chats, "online": online,
                                                    "skills": None if skills is None else list(skills)}))

    def define_topic(self, name: str, skill: str | None = None, priority: int = 0, weight: int = 1) -> None:
        self.run("define_topic", {"name": name, "skill": skill, "priority": priority, "weight": weight})

    def set_operator_online(self, operator_id: int, online: bool) -> int:
        """Returns how many chats going offline released."""
        return int(self._scalar("set_operator_online", {"operator_id": operator_id, "online": online}))

    def touch_operator(self, operator_id: int) -> None:
        self.run("touch_operator", {"operator_id": operator_id})

    # -- chats -------------------------------------------------------------------------
    def real_user_message(self, real_user_id: int, body: str, chat_id: int | None = None, topic: str | None = None) -> int:
        return int(self._scalar("real_user_message", {"real_user_id": real_user_id, "body": body, "chat_id": chat_id,
                                                      "topic": topic}))

    def assign_chat_to_operator(
        self, operator_id: int, policy: str = "exclude_last", fallback_after: float = 300.0, salt: int | None = 0,
        relax_after: float | None = None, sla_targets: Sequence[float] | None = None,
        sticky_for: float | None = None, fair_limit: int | None = None, fair_window: float | None = 3600.0,
    ) -> int | None:
        """The chat the policy gives the operator under the routing rules (the keywords after
        ``salt``: :class:`sim.routing.Routing`), or None."""
        value = self._scalar("assign_chat_to_operator", {
            "operator_id": operator_id, "policy": policy, "fallback_after": fallback_after, "salt": salt,
            "relax_after": relax_after, "sla_targets": None if sla_targets is None else list(sla_targets),
            "sticky_for": sticky_for, "fair_limit": fair_limit, "fair_window": fair_window},
            nothing_if_empty=True)
        return None if value is None else int(value)

    def wake_dispatchers(self) -> None:
        """Opt this session in: its queue changes (a new chat or message, a freed slot, a log-in) now
        NOTIFY the push dispatchers (021's trigger; off by default, as NOTIFY serialises commits)."""
        self.run("notify_on")

    def listen_news(self) -> None:
        """Make this session a wake-up line: it receives 022's ``chatlab_news`` notifications (read them with
        ``conn.notifies``)."""
        self.run("listen_news")

    def dispatch_waiting_chats(
        self, policy: str = "exclude_last", fallback_after: float = 300.0, salt: int | None = 0,
        relax_after: float | None = None, sla_targets: Sequence[float] | None = None,
        sticky_for: float | None = None, fair_limit: int | None = None, fair_window: float | None = 3600.0,
    ) -> list[tuple[int, int]]:
        """Push mode: offer the queue to the online operators in turn (:func:`sim.dispatch.dispatch`'s rule);
        (operator, chat) per assignment made, in order."""
        rows = self.run("dispatch_waiting_chats", {
            "policy": policy, "fallback_after": fallback_after, "salt": salt, "relax_after": relax_after,
            "sla_targets": None if sla_targets is None else list(sla_targets), "sticky_for": sticky_for,
            "fair_limit": fair_limit, "fair_window": fair_window})
        return [(int(op), int(chat)) for op, chat in rows]

    def operator_message(self, operator_id: int, chat_id: int, body: str) -> int:
        """Returns the message id."""
        return int(self._scalar("operator_message", {"operator_id": operator_id, "chat_id": chat_id, "body": body}))

    def unassign_chat(self, operator_id: int, chat_id: int) -> None:
        self.run("unassign_chat", {"operator_id": operator_id, "chat_id": chat_id})

    def end_chat(self, chat_id: int, reason: str = "resolved") -> None:
        self.run("end_chat", {"chat_id": chat_id, "reason": reason})

    def operator_chat_messages(self, operator_id: int, chat_id: int) -> list[dict[str, Any]]:
        """The chat's messages, oldest first; only for the operator holding it (else NotYourChat)."""
        return self.run("operator_chat_messages", {"operator_id": operator_id, "chat_id": chat_id}, as_dict=True)

    # -- housekeeping ------------------------------------------------------------------
    def release_idle_operator_chats(self, idle_after_seconds: float) -> int:
        return int(self._scalar("release_idle_operator_chats", {"seconds": idle_after_seconds}))

    def release_unanswered_chats(self, after_seconds: float) -> int:
        """The no-answer timeout: returns how many chats went back to the queue."""
        return int(self._scalar("release_unanswered_chats", {"seconds": after_seconds}))

    def release_and_reassign_chat(self, chat_id: int, reason: str = "manual_fix") -> int:
        """Returns the operator the chat was taken from."""
        return int(self._scalar("release_and_reassign_chat", {"chat_id": chat_id, "reason": reason}))

    def detect_stuck_chats(self, hours: float = 1.0) -> list[StuckChat]:
        rows = self.run("detect_stuck_chats", {"hours": hours}, nothing_if_empty=True)
        return [StuckChat(int(c), int(o), a, float(s)) for c, o, a, s in rows]

    def get_assignment_queue_status(self) -> dict[str, Any]:
        return dict(self.run("get_assignment_queue_status", as_dict=True)[0])

    def chat_state_summary(self) -> list[dict[str, Any]]:
        return self.run("chat_state_summary", as_dict=True)

    def chat_next_state(self, state: str, event: str, legacy: bool = False) -> State:
        return State(self._scalar("chat_next_state", {"state": str(state), "event": str(event), "legacy": legacy}))

    def verify(self) -> list[Check]:
        """The seed's verification checks (``chatlab db verify``)."""
        rows = self.run("chat_state_verification")
        if self._scalar("has_access_verification"):
            rows += self.run("chat_access_verification")
        return [Check(n, bool(p), d) for n, p, d in rows]

    # -- what the load test's clients see ----------------------------------------------
    def chat_status(self, chat_id: int) -> tuple[Any, ...] | None:
        """(state, operator_replied_at, last user message time) of one chat, or None if missing."""
        rows = self.run("chat_status", {"chat_id": chat_id})
        return tuple(rows[0]) if rows else None

    def inbox(self, operator_id: int) -> Inbox:
        """Is the operator logged in, and which chats does it hold (oldest pending first)."""
        rows = self.run("operator_inbox", {"operator_id": operator_id})
        if not rows:
            return Inbox(False, ())
        return Inbox(bool(rows[0][0]), tuple(HeldChat(int(r[1]), bool(r[2]), r[4] if len(r) > 4 else None)
                                             for r in rows if r[1] is not None))

    def try_claim(self, namespace: int, key: int) -> bool:
        """A session advisory lock ``(namespace, key)``: True if this connection now holds it."""
        return bool(self._scalar("try_claim", {"namespace": namespace, "key": key}))

    def connection_budget(self) -> int:
        """Connections a client may still open: ``max_connections`` minus the reserved and those in use."""
        return int(self._scalar("connection_budget"))

    def integrity(self) -> dict[str, int]:
        """History checks after a load test: assignments, double_assigned, over_capacity."""
        return {k: int(v) for k, v in self.run("integrity", as_dict=True)[0].items()}

    def live_numbers(self) -> dict[str, Any]:
        """The run so far in one snapshot (queue, assignments, repeats, premature, served-wait
        percentiles in wall s, per operator): what a load test's web UI tab shows while it runs."""
        return dict(self.run("live_numbers", as_dict=True)[0])

    # -- getters -----------------------------------------------------------------------
    def state_of(self, chat_id: int) -> State:
        value = self._scalar("chat_state", {"chat_id": chat_id})
        if value is None:
            raise UnknownChat(f"unknown chat {chat_id}")
        return State(value)

    def chat(self, chat_id: int) -> dict[str, Any] | None:
        rows = self.run("chat", {"chat_id": chat_id}, as_dict=True)
        return rows[0] if rows else None

    def operator(self, operator_id: int) -> dict[str, Any] | None:
        rows = self.run("operator", {"operator_id": operator_id}, as_dict=True)
        return rows[0] if rows else None

    def chats(self) -> list[dict[str, Any]]:
        return self.run("chats", as_dict=True)

    def operators(self) -> list[dict[str, Any]]:
        return self.run("operators", as_dict=True)

    def assignments(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """History rows (of one chat, or all), oldest first."""
        if chat_id is None:
            return self.run("assignments", as_dict=True)
        return self.run("chat_assignments", {"chat_id": chat_id}, as_dict=True)

    def events(self):  # -> pandas.DataFrame (imported lazily)
        """The event log of this schema in sim/eventlog.py's shape."""
        from chatlab.db.history import read_event_log

        return read_event_log(self.conn, self.schema)

    def active_chats(self, operator_id: int) -> list[int]:
        return [int(r[0]) for r in self.run("active_chats", {"operator_id": operator_id})]


__all__ = ["ChatDB", "Check", "EPOCH", "HeldChat", "Inbox", "Observer", "StuckChat", "to_seconds", "to_timestamp"]
