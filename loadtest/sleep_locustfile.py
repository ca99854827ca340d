"""Concurrency probe: N Locust users each run ``SELECT pg_sleep(0.01)`` back to back.

If gevent and psycopg cooperate, N users reach close to N x 100 requests per second (one
request takes ~10 ms of server time, the client only waits).  If psycopg blocks the hub,
the users take turns and the rate collapses to ~100 req/s whatever N is.  Used by
``benchmarks/bench_locust_concurrency.py`` and ``tests/test_loadtest.py``.

Environment: ``CHATLAB_DSN`` (required), ``CHATLAB_SLEEP_S`` (default 0.01),
``CHATLAB_PROBE_RESULT`` (a JSON file that receives the steady-state figures),
``CHATLAB_PROBE_ALLOW_BLOCKING=1`` skips the guard (only to demonstrate the failure).
"""

from __future__ import annotations

import locust  # noqa: F401  # first: gevent patches select before psycopg is imported
from locust import User, constant, events, task

import json
import os
import time

import psycopg.waiting

from loadtest.pgclient import PgClient, ensure_cooperative_wait

if os.environ.get("CHATLAB_PROBE_ALLOW_BLOCKING") != "1":
    ensure_cooperative_wait()

SLEEP_S = float(os.environ.get("CHATLAB_SLEEP_S", "0.01"))
_mark: dict[str, float] = {}


class PgSleepUser(User):
    """Back-to-back ``pg_sleep`` calls: the request rate measures how many run at once."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.client = PgClient(os.environ["CHATLAB_DSN"], environment=self.environment,
                               application_name="chatlab-probe")

    def on_stop(self) -> None:
        self.client.close()

    @task
    def sleep(self) -> None:
        self.client.query("pg_sleep", "SELECT pg_sleep(%s)", (SLEEP_S,))


@events.spawning_complete.add_listener
def _spawned(user_count: int, **_: object) -> None:
    """Start the steady-state window once every user is running."""
    env = locust_env[0] if locust_env else None
    if env is not None and env.runner is not None:
        _mark.update(t0=time.perf_counter(), n0=env.runner.stats.total.num_requests, users=user_count)


@events.test_stopping.add_listener
def _stopping(environment: object, **_: object) -> None:
    path = os.environ.get("CHATLAB_PROBE_RESULT")
    runner = getattr(environment, "runner", None)
    if not path or runner is None or "t0" not in _mark:
        return
    elapsed = time.perf_counter() - _mark["t0"]
    done = runner.stats.total.num_requests - _mark["n0"]
    with open(path, "w") as fh:
        json.dump({
            "users": int(_mark["users"]),
            "sleep_s": SLEEP_S,
            "window_s": elapsed,
            "requests": int(done),
            "failures": int(runner.stats.total.num_failures),
            "rps": done / elapsed if elapsed > 0 else 0.0,
            "wait_function": psycopg.waiting.wait.__name__,
        }, fh)


locust_env: list = []


@events.init.add_listener
def _init(environment: object, **_: object) -> None:
    locust_env.append(environment)
