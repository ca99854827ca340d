"""An exception in a Locust user fails the load test.

Why: Locust catches an exception raised in a user's ``on_start`` or task, logs it, fires
``events.user_error`` and carries on; its exit code is then ``--exit-code-on-error`` (1), the
same as for ordinary request failures, which a load test of the real functions has by design
(an assign that loses a race is one).  So a run whose operators all crashed in ``on_start``
used to end with "25 requests, 0 failures" and exit 0.  Now:

* every exception Locust counted in a user (its runner's ``exceptions``: on a master, every
  worker's too), and every one the lab's own greenlets catch (an operator's poller, the
  arrival feeder: :func:`report`, which fires the same event), makes the Locust process exit
  with :data:`USER_ERROR_EXIT` and puts the count and the first one, in one line, in the run
  info (``locust_run_info.json``);
* the session (``loadtest/session.py``) turns that into :class:`~loadtest.session.LoadTestFailed`
  — ``chatlab loadtest`` prints it as one line and exits 2; no report is written.

:data:`FAULT_ENV` is for the tests only: ``CHATLAB_LOADTEST_FAULT=<point>`` makes that point raise
:class:`InjectedFault` in the real Locust process — ``<role>.on_start`` (``operator``,
``real_user``, ``housekeeper``), ``operator.poller`` (every poll), ``feeder`` (the arrivals).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

#: The Locust process's exit code when a user raised (Locust's own: 0 ok, 1 failures, 2 crash).
USER_ERROR_EXIT = 3
FAULT_ENV = "CHATLAB_LOADTEST_FAULT"

_ROOT = Path(__file__).resolve().parents[1]
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


class InjectedFault(RuntimeError):
    """The fault a test asked for with ``$CHATLAB_LOADTEST_FAULT``.

    Deliberately not a :class:`~sim.errors.ChatLabError`: it stands for a bug, and the flows
    catch ChatLabErrors as the database's expected refusals (already Locust failures)."""


def inject_fault(point: str) -> None:
    """Raise :class:`InjectedFault` at ``point`` if ``$CHATLAB_LOADTEST_FAULT`` names it (tests only)."""
    if os.environ.get(FAULT_ENV, "") == point:
        raise InjectedFault(f"injected fault at {point} (${FAULT_ENV}={point})")


def count(environment: Any) -> int:
    """Exceptions Locust has counted in users so far."""
    rows = getattr(getattr(environment, "runner", None), "exceptions", None) or {}
    return sum(int(row.get("count", 0)) for row in rows.values())


def first(environment: Any) -> str | None:
    """The first distinct exception as one line: its message and where (file:line in function)."""
    rows = getattr(getattr(environment, "runner", None), "exceptions", None) or {}
    for row in rows.values():
        frames = _FRAME.findall(row.get("traceback", ""))
        where = ""
        ours = [f for f in frames if _short(f[0]) != Path(f[0]).name] or frames
        if ours:  # the innermost frame in the project's code (else the innermost)
            path, line, func = ours[-1]
            where = f" at {_short(path)}:{line} in {func}"
        message = " ".join(str(row.get("msg", "")).split()) or "(no message)"
        return f"{message}{where}"
    return None


def _short(path: str) -> str:
    """A path in this project relative to it, any other (a library's) by its file name."""
    if not Path(path).is_absolute():  # a compiled module's frame ("numpy/random/x.pyx")
        return Path(path).name
    try:
        return str(Path(path).resolve().relative_to(_ROOT))
    except ValueError:
        return Path(path).name


def report(environment: Any, user: Any, exc: BaseException) -> None:
    """An exception the lab caught itself in a user's greenlet: counted as Locust counts its own."""
    environment.events.user_error.fire(user_instance=user, exception=exc, tb=exc.__traceback__)


def on_quitting(environment: Any) -> dict[str, Any]:
    """At exit: the process exit code if a user raised, and what the run info records."""
    n = count(environment)
    if n:
        environment.process_exit_code = USER_ERROR_EXIT
    return {"user_errors": n, "first_user_error": first(environment)}
