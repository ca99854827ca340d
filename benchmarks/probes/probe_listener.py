"""The probes' one Locust listener: a steady-state window from "all users spawned" to "stopping".

Both probe locustfiles import this module (Locust puts the locustfile's directory on
``sys.path``); each registers what it counts with :func:`measure` and gets a JSON file at
``$CHATLAB_PROBE_RESULT`` with the users, the window, the requests and the rate in it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from locust import events

_env: list[Any] = []
_mark: dict[str, float] = {}
_extra: list[Callable[[Any, float, dict[str, float]], dict[str, Any]]] = []
_starts: list[Callable[[Any], dict[str, float]]] = []


def measure(extra: Callable[[Any, float, dict[str, float]], dict[str, Any]]) -> None:
    """Add figures to the result: ``extra(runner, window_s, mark)`` returns a dict (``mark`` holds
    what was counted at the window's start under the names the probe chose in :func:`on_start`)."""
    _extra.append(extra)


def on_start(counter: Callable[[Any], dict[str, float]]) -> None:
    """Record probe-specific counters when the window opens (``counter(runner)`` -> named values)."""
    _starts.append(counter)


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    _env.append(environment)


@events.spawning_complete.add_listener
def _spawned(user_count: int, **_: Any) -> None:
    runner = _env[0].runner if _env else None
    if runner is not None:
        _mark.update(t0=time.perf_counter(), n0=runner.stats.total.num_requests, users=user_count)
        for counter in _starts:
            _mark.update(counter(runner))


@events.test_stopping.add_listener
def _stopping(environment: Any, **_: Any) -> None:
    path = os.environ.get("CHATLAB_PROBE_RESULT")
    runner = getattr(environment, "runner", None)
    if not path or runner is None or "t0" not in _mark:
        return
    window = time.perf_counter() - _mark["t0"]
    done = runner.stats.total.num_requests - _mark["n0"]
    result: dict[str, Any] = {"users": int(_mark["users"]), "window_s": window, "requests": int(done),
                              "rps": done / window if window > 0 else 0.0,
                              "failures": int(runner.stats.total.num_failures)}
    for extra in _extra:
        result.update(extra(runner, window, _mark))
    with open(path, "w") as fh:
        json.dump(result, fh)
