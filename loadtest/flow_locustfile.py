"""Throughput probe: the chat flow's SQL functions back to back, no think time.

Each Locust user is one operator (claimed by its number) that loops: a real user opens a
chat (``real_user_message``), the operator asks for work (``assign_chat_to_operator``),
answers what it got (``operator_message``) and the chat is ended (``end_chat``).  Run
with 1 user and with N users, the request rates say how well the functions scale under
concurrent callers (row locks, ``SKIP LOCKED``) on this server.
``benchmarks/bench_locust_flow.py`` drives it.

Environment: ``CHATLAB_DSN``, ``CHATLAB_SCHEMA`` (migrated, with operators 1..N seeded),
``CHATLAB_POLICY`` (default exclude_last), ``CHATLAB_PROBE_RESULT`` (JSON output file).
"""

from __future__ import annotations

import locust  # noqa: F401  # first: gevent patches select before psycopg is imported
from locust import User, constant, events, task

import itertools
import json
import os
import time

from loadtest.pgclient import CallFailed, PgClient, ensure_cooperative_wait

WAIT_FUNCTION = ensure_cooperative_wait()

from loadtest.chatapi import ChatAPI  # noqa: E402

POLICY = os.environ.get("CHATLAB_POLICY", "exclude_last")
_numbers = itertools.count(1)
_mark: dict[str, float] = {}
_env: list = []


class FlowUser(User):
    """One operator plus the real users it serves, as fast as the database answers."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.operator_id = next(_numbers)
        self.api = ChatAPI(PgClient(os.environ["CHATLAB_DSN"], environment=self.environment,
                                    schema=os.environ["CHATLAB_SCHEMA"], application_name="chatlab-flow"))
        self.api.set_operator_online(self.operator_id, True)
        self.users = itertools.count(self.operator_id * 1_000_000)

    def on_stop(self) -> None:
        self.api.client.close()

    @task
    def flow(self) -> None:
        try:
            self.api.user_message(next(self.users), "hello")
            chat_id = self.api.assign(self.operator_id, POLICY, 0.0, None)
            if chat_id is None:
                return
            self.api.reply(self.operator_id, chat_id, "an answer")
            self.api.end_chat(chat_id, "resolved")
        except CallFailed:
            pass  # counted as a Locust failure already


@events.init.add_listener
def _init(environment: object, **_: object) -> None:
    _env.append(environment)


@events.spawning_complete.add_listener
def _spawned(user_count: int, **_: object) -> None:
    runner = _env[0].runner if _env else None
    if runner is not None:
        _mark.update(t0=time.perf_counter(), n0=runner.stats.total.num_requests,
                     a0=runner.stats.get("assign_chat_to_operator", "sql").num_requests, users=user_count)


@events.test_stopping.add_listener
def _stopping(environment: object, **_: object) -> None:
    path = os.environ.get("CHATLAB_PROBE_RESULT")
    runner = getattr(environment, "runner", None)
    if not path or runner is None or "t0" not in _mark:
        return
    elapsed = time.perf_counter() - _mark["t0"]
    done = runner.stats.total.num_requests - _mark["n0"]
    assigned = runner.stats.get("assign_chat_to_operator", "sql").num_requests - _mark["a0"]
    with open(path, "w") as fh:
        json.dump({"users": int(_mark["users"]), "window_s": elapsed, "requests": int(done),
                   "rps": done / elapsed if elapsed > 0 else 0.0,
                   "assignments_per_s": assigned / elapsed if elapsed > 0 else 0.0,
                   "failures": int(runner.stats.total.num_failures), "wait_function": WAIT_FUNCTION}, fh)
