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
from locust import User, constant, task

import os

import psycopg.waiting

from loadtest.reporting import LocustReporter, ensure_cooperative_wait

if os.environ.get("CHATLAB_PROBE_ALLOW_BLOCKING") != "1":
    ensure_cooperative_wait()

import probe_listener  # noqa: E402  (benchmarks/probes, on sys.path as the locustfile's directory)
from chatlab.db.client import ChatDB  # noqa: E402

SLEEP_S = float(os.environ.get("CHATLAB_SLEEP_S", "0.01"))
probe_listener.measure(lambda runner, window, mark: {"sleep_s": SLEEP_S, "wait_function": psycopg.waiting.wait.__name__})


class PgSleepUser(User):
    """Back-to-back ``pg_sleep`` calls: the request rate measures how many run at once."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.db = ChatDB(os.environ["CHATLAB_DSN"], application_name="chatlab-probe",
                         observer=LocustReporter(self.environment))

    def on_stop(self) -> None:
        self.db.close()

    @task
    def sleep(self) -> None:
        self.db.run("probe_sleep", {"seconds": SLEEP_S})
