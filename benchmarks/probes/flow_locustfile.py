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
from locust import User, constant, task

import itertools
import os

from loadtest.reporting import LocustReporter, ensure_cooperative_wait

WAIT_FUNCTION = ensure_cooperative_wait()

import probe_listener  # noqa: E402  (benchmarks/probes, on sys.path as the locustfile's directory)
from chatlab.db.client import ChatDB  # noqa: E402
from sim.errors import ChatLabError  # noqa: E402

POLICY = os.environ.get("CHATLAB_POLICY", "exclude_last")
_numbers = itertools.count(1)


def _assigns(runner) -> int:  # noqa: ANN001
    return runner.stats.get("assign_chat_to_operator", "sql").num_requests


probe_listener.on_start(lambda runner: {"a0": _assigns(runner)})
probe_listener.measure(lambda runner, window, mark: {
    "assignments_per_s": (_assigns(runner) - mark["a0"]) / window if window > 0 else 0.0,
    "wait_function": WAIT_FUNCTION})


class FlowUser(User):
    """One operator plus the real users it serves, as fast as the database answers."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.operator_id = next(_numbers)
        self.db = ChatDB(os.environ["CHATLAB_DSN"], os.environ["CHATLAB_SCHEMA"], application_name="chatlab-flow",
                         observer=LocustReporter(self.environment))
        self.db.set_operator_online(self.operator_id, True)
        self.users = itertools.count(self.operator_id * 1_000_000)

    def on_stop(self) -> None:
        self.db.close()

    @task
    def flow(self) -> None:
        try:
            self.db.real_user_message(next(self.users), "hello")
            chat_id = self.db.assign_chat_to_operator(self.operator_id, POLICY, 0.0, None)
            if chat_id is None:
                return
            self.db.operator_message(self.operator_id, chat_id, "an answer")
            self.db.end_chat(chat_id, "resolved")
        except ChatLabError:
            pass  # counted as a Locust failure already
