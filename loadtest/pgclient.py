"""A small Locust client for PostgreSQL functions: one psycopg 3 connection per Locust user.

Why our own instead of ``locust/contrib/postgres.py``: that one runs without autocommit
(every call leaves a transaction open, so row locks taken by ``FOR UPDATE SKIP LOCKED``
in ``assign_chat_to_operator`` would never be released) and it throws results away (the
flows need the chat id an assign returns).  This client follows Locust's documented
custom-client pattern: time the call, then ``environment.events.request.fire(...)`` so
Locust's statistics, CSV files and web UI count it like an HTTP request.

Outcomes
--------
* a normal result: ``request_type="sql"``, no exception;
* an *expected* outcome that is not a failure — the function returned NULL ("nothing to
  assign") or raised one of the SQLSTATEs the caller declared expected (a race the real
  system also has, e.g. replying to a chat idle detection just took away):
  ``request_type="sql:<label>"`` and no exception, so it shows as its own row in the
  statistics without counting as a failure;
* anything else: ``request_type="sql"`` with ``exception=...`` (a Locust failure) and
  :class:`CallFailed` is raised so the calling flow stops what it was doing.

IMPORTANT: under Locust this module must be imported *after* ``locust`` (which makes
gevent patch ``select``); otherwise psycopg picks its C wait function, which blocks the
whole process and serialises every user.  :func:`ensure_cooperative_wait` checks it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.waiting
from psycopg import sql

#: Label used for a call whose scalar result is NULL ("nothing to do").
EMPTY = "empty"


class CallFailed(Exception):
    """A database call failed for a reason the flow did not expect (already reported to Locust)."""

    def __init__(self, name: str, cause: BaseException) -> None:
        self.name = name
        self.cause = cause
        super().__init__(f"{name}: {cause}")


class NotCooperative(RuntimeError):
    """psycopg would block the whole gevent hub: Locust users would run one at a time."""


def ensure_cooperative_wait() -> str:
    """Fail loudly unless psycopg chose a gevent-friendly wait function; return its name.

    psycopg decides once, at import time: if gevent has already patched ``select`` it uses
    a pure-Python wait on the patched ``select.poll``; otherwise ``wait_c``, a C loop that
    never yields to the gevent hub.  Measured on this lab's box: 50 users doing 10 ms
    queries reach ~2,900 req/s with the right order and ~90 req/s with the wrong one.
    """
    name = psycopg.waiting.wait.__name__
    if name == "wait_c":
        raise NotCooperative(
            "psycopg was imported before gevent patched 'select' (psycopg.waiting.wait is wait_c): "
            "every Locust user would block the others. Import locust before anything that imports "
            "psycopg, and run Locust in a fresh process."
        )
    return name


@dataclass(frozen=True)
class Outcome:
    """What one call returned: ``label`` is None for a normal result, else the expected-outcome label."""

    rows: list[tuple]
    label: str | None = None
    sqlstate: str | None = None

    @property
    def value(self) -> Any:
        """The scalar result (first column of the first row), or None."""
        return self.rows[0][0] if self.rows and self.rows[0] else None


def _function_call(function: str, positional: int, named: Sequence[str]) -> sql.Composed:
    """``SELECT * FROM fn(%s, ..., name => %s)`` with every identifier quoted by psycopg."""
    args: list[sql.Composable] = [sql.Placeholder()] * positional
    args += [sql.SQL("{} => {}").format(sql.Identifier(n), sql.Placeholder()) for n in named]
    return sql.SQL("SELECT * FROM {}({})").format(sql.Identifier(function), sql.SQL(", ").join(args))


class PgClient:
    """One autocommit connection; every call is reported to Locust as ``sql`` request ``name``.

    ``environment`` is Locust's ``Environment`` (``self.environment`` in a User); pass
    ``None`` to use the client outside Locust (nothing is reported then).
    """

    def __init__(
        self,
        dsn: str,
        *,
        environment: Any = None,
        schema: str | None = None,
        application_name: str = "chatlab-loadtest",
        context: Mapping[str, Any] | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.dsn = dsn
        self.environment = environment
        self.schema = schema
        self.application_name = application_name
        self.context: dict[str, Any] = dict(context or {})
        self.connect_timeout = connect_timeout
        self._queries: dict[tuple[str, int, tuple[str, ...]], sql.Composed] = {}
        self.conn: psycopg.Connection | None = None
        self.connect()

    # -- connection -------------------------------------------------------------------
    def connect(self) -> None:
        """(Re)open the connection and put the run's schema first on the search path."""
        self.close()
        conn = psycopg.connect(
            self.dsn,
            autocommit=True,
            application_name=self.application_name,
            connect_timeout=max(1, int(self.connect_timeout)),
        )
        if self.schema:
            conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(self.schema)))
        self.conn = conn

    def close(self) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.close()
        self.conn = None

    # -- calls ------------------------------------------------------------------------
    def call(
        self,
        function: str,
        *args: Any,
        expected: Iterable[str] = (),
        empty_ok: bool = True,
        name: str | None = None,
        **kwargs: Any,
    ) -> Outcome:
        """Call the SQL function ``function(*args, **kwargs)`` (keyword args use ``name => value``).

        ``expected``: SQLSTATEs that are a normal part of the flow (counted as
        ``sql:<SQLSTATE>``, not as failures).  ``empty_ok``: a NULL/no-row result is the
        expected "nothing to do" (``sql:empty``).
        """
        key = (function, len(args), tuple(kwargs))
        query = self._queries.get(key)
        if query is None:
            query = self._queries[key] = _function_call(function, len(args), tuple(kwargs))
        return self.execute(query, (*args, *kwargs.values()), name=name or function,
                            expected=expected, empty_ok=empty_ok)

    def query(self, name: str, query: sql.Composable | str, params: Sequence[Any] = (),
              *, expected: Iterable[str] = ()) -> Outcome:
        """Run a fixed read query (e.g. a state poll) and report it as ``name``."""
        return self.execute(query, params, name=name, expected=expected, empty_ok=False)

    def execute(
        self,
        query: sql.Composable | str,
        params: Sequence[Any],
        *,
        name: str,
        expected: Iterable[str] = (),
        empty_ok: bool = False,
    ) -> Outcome:
        if self.conn is None or self.conn.closed:
            self.connect()
        assert self.conn is not None
        start = time.perf_counter()
        try:
            cur = self.conn.execute(query, params)  # type: ignore[arg-type]
            rows = cur.fetchall() if cur.description is not None else []
        except psycopg.Error as exc:
            elapsed = (time.perf_counter() - start) * 1000.0
            state = exc.sqlstate
            if state is not None and state in set(expected):
                self._fire(name, f"sql:{state}", elapsed, 0, None)
                return Outcome([], label=state, sqlstate=state)
            self._fire(name, "sql", elapsed, 0, exc)
            if isinstance(exc, psycopg.OperationalError) and self.conn.broken:
                self.conn = None  # reconnect on the next call
            raise CallFailed(name, exc) from exc
        elapsed = (time.perf_counter() - start) * 1000.0
        empty = not rows or (len(rows) == 1 and all(v is None for v in rows[0]))
        if empty and empty_ok:
            self._fire(name, f"sql:{EMPTY}", elapsed, 0, None)
            return Outcome(rows, label=EMPTY)
        self._fire(name, "sql", elapsed, len(rows), None)
        return Outcome(rows)

    def _fire(self, name: str, request_type: str, elapsed_ms: float, length: int,
              exc: BaseException | None) -> None:
        if self.environment is None:
            return
        self.environment.events.request.fire(
            request_type=request_type,
            name=name,
            response_time=elapsed_ms,
            response_length=length,
            exception=exc,
            context=self.context,
        )
