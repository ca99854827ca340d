"""Locust's view of the lab's one client: every :class:`~chatlab.db.client.ChatDB` call becomes a
Locust request event, so Locust's statistics, CSV files and web UI count SQL calls like HTTP
requests (Locust's documented custom-client pattern: time the call, fire ``events.request``).

Why not ``locust/contrib/postgres.py``: it runs without autocommit (every call leaves a
transaction open, so the row locks ``assign_chat_to_operator`` takes with ``FOR UPDATE SKIP
LOCKED`` would never be released) and it throws results away.  The lab's typed client does
the calls; this module only listens to them (``ChatDB(observer=...)``).

Outcomes
--------
* a normal result: ``request_type="sql"``, no exception;
* an *expected* outcome that is not a failure: nothing to do (an assign with nothing
  eligible: ``sql:empty``), or a race the real system has too — another actor moved first,
  e.g. replying to a chat idle detection just took away (:data:`sim.errors.RACE_SQLSTATES`:
  ``sql:CL003`` ...).  Each shows as its own row in the statistics without counting as a
  failure;
* anything else: ``request_type="sql"`` with the exception (a Locust failure); the error
  propagates to the flow, which stops what it was doing.

IMPORTANT: under Locust, psycopg must be imported *after* ``locust`` (which makes gevent
patch ``select``); otherwise psycopg picks its C wait function, which blocks the whole
process and serialises every user.  :func:`ensure_cooperative_wait` checks it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sim.errors import RACE_SQLSTATES, ChatLabError

#: Request type of a call that found nothing to do.
EMPTY = "empty"


class NotCooperative(RuntimeError):
    """psycopg would block the whole gevent hub: Locust users would run one at a time."""


def ensure_cooperative_wait() -> str:
    """Fail loudly unless psycopg chose a gevent-friendly wait function; return its name.

    psycopg decides once, at import time: if gevent has already patched ``select`` it uses
    a pure-Python wait on the patched ``select.poll``; otherwise ``wait_c``, a C loop that
    never yields to the gevent hub.  Measured on this lab's box: 50 users doing 10 ms
    queries reach ~4,700 req/s with the right order and ~90 req/s with the wrong one.
    """
    import psycopg.waiting

    name = psycopg.waiting.wait.__name__
    if name == "wait_c":
        raise NotCooperative(
            "psycopg was imported before gevent patched 'select' (psycopg.waiting.wait is wait_c): "
            "every Locust user would block the others. Import locust before anything that imports "
            "psycopg, and run Locust in a fresh process."
        )
    return name


class LocustReporter:
    """A ``ChatDB`` observer that fires one Locust request event per call (see the module docstring)."""

    def __init__(self, environment: Any, context: Mapping[str, Any] | None = None) -> None:
        self.environment = environment
        self.context = dict(context or {})

    def __call__(self, name: str, elapsed_ms: float, rows: int, error: ChatLabError | None, empty: bool) -> None:
        exception: BaseException | None = None
        if error is not None and error.sqlstate in RACE_SQLSTATES:
            request_type = f"sql:{error.sqlstate}"
        elif error is not None:
            request_type, exception = "sql", error
        else:
            request_type = f"sql:{EMPTY}" if empty else "sql"
        self.environment.events.request.fire(request_type=request_type, name=name, response_time=elapsed_ms,
                                             response_length=rows, exception=exception, context=self.context)


def attempt(call: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    """``(True, result)``, or ``(False, None)`` when another actor moved first (a race SQLSTATE).

    Any other error propagates: Locust has counted it as a failure already.
    """
    try:
        return True, call(*args)
    except ChatLabError as exc:
        if exc.sqlstate in RACE_SQLSTATES:
            return False, None
        raise
