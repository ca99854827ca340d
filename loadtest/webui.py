"""The lab's numbers live in Locust's web UI: two extra tabs and a JSON endpoint.

Why: Locust's own tabs count SQL calls; what a load test of an assignment policy is about —
repeat and premature assignments, the queue, waits, who got how many chats — is in the run's
schema.  This module adds it through Locust's documented extension points of the installed
version (2.47, ``examples/extend_web_ui.py``):

* ``GET /chatlab/live`` — a Flask route on ``environment.web_ui.app``: the numbers as JSON;
* ``web_ui.template_args["extended_tabs"]`` / ``["extended_tables"]`` — the React UI draws a
  "Chat lab" and a "Chat lab: operators" tab, each a table whose columns we declare;
* an ``after_request`` hook adds their rows (``extended_stats``) to ``/stats/requests``,
  which the UI polls every 2 s while the run is going, so the tabs update during the run.

The numbers come from one cheap query of the run's schema (``live_numbers`` in
``chatlab/db/queries.sql``, chatlab.metrics' definitions, read by the database in one
snapshot), at most once a second, on its own connection.  The database does the work, so
the gevent loop that runs the users is not held up; and in distributed mode the master,
which serves the UI, sees every worker's chats.  Waits are converted to scenario seconds
with the run's time scale.  Outside targets (``--target``) have no event log: no tabs.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from gevent.lock import BoundedSemaphore

from loadtest import usererrors
from loadtest.runtime import Runtime

log = logging.getLogger("chatlab.loadtest")

ROUTE = "/chatlab/live"
SUMMARY_TAB, OPERATORS_TAB = "chatlab", "chatlab-operators"
#: Seconds a computed snapshot is served again before the database is asked anew.
CACHE_S = 1.0
#: The tables' columns (keys without underscores: the UI camel-cases every key it receives).
SUMMARY_COLUMNS = (("metric", "Metric"), ("value", "Value"))
OPERATOR_COLUMNS = (("operator", "Operator"), ("online", "Online"), ("holding", "Holding"),
                    ("assignments", "Assignments"), ("repeats", "Repeats"), ("premature", "Premature"))


def _rate(part: int, whole: int) -> str:
    return f"{part:,} ({100.0 * part / whole:.1f} %)" if whole else f"{part:,}"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


class LiveNumbers:
    """The run so far, from the run's schema; one connection, opened on first use."""

    def __init__(self, run: Runtime, environment: Any) -> None:
        self.run, self.environment = run, environment
        self._db: Any = None
        self._lock = BoundedSemaphore()
        self._cached: tuple[float, dict[str, Any]] | None = None

    def snapshot(self) -> dict[str, Any]:
        """The JSON of ``/chatlab/live`` (cached for :data:`CACHE_S`)."""
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < CACHE_S:
                return self._cached[1]
            data = self._compute()
            self._cached = (time.monotonic(), data)
            return data

    def _compute(self) -> dict[str, Any]:
        from chatlab.db.client import ChatDB
        from sim.errors import ChatLabError

        settings, k = self.run.settings, self.run.settings.time_scale
        data: dict[str, Any] = {"scenario": self.run.scenario.name, "policy": settings.policy, "time_scale": k,
                                "scenario_time_s": self.run.clock.now() if self.run.started_at_db else 0.0,
                                "user_errors": usererrors.count(self.environment)}
        try:
            if self._db is None:
                self._db = ChatDB(settings.dsn, settings.schema, application_name="chatlab-webui")
            row = self._db.live_numbers()
        except ChatLabError as exc:  # never break Locust's own stats endpoint: say so in the tab
            data["error"] = " ".join(str(exc).split())
            return data
        waits = row.pop("wait_percentiles_s") or [None, None, None]
        data.update({key: int(value) for key, value in row.items() if key != "operators"})
        data["wait_s"] = {q: (None if w is None else float(w) * k) for q, w in zip(("p50", "p90", "p99"), waits)}
        data["operators"] = [{**op, "online": bool(op["online"])} for op in (row["operators"] or [])]
        return data

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- the tabs' rows --------------------------------------------------------------------
    @staticmethod
    def summary_rows(data: dict[str, Any]) -> list[dict[str, str]]:
        if "error" in data:
            return [{"metric": "database", "value": f"unavailable: {data['error']}"},
                    {"metric": "user errors", "value": f"{data['user_errors']:,}"}]
        n, wait = data["assignments"], data["wait_s"]
        pairs = [
            ("scenario time (s)", f"{data['scenario_time_s']:,.0f}"),
            ("chats opened", f"{data['chats']:,}"),
            ("chats completed", f"{data['completed']:,}"),
            ("queue length", f"{data['queue_length']:,}"),
            ("assignments", f"{n:,}"),
            ("repeat assignments", _rate(data["repeats"], n)),
            ("premature assignments", _rate(data["premature"], n)),
            ("served waits", f"{data['waits_served']:,}"),
            ("wait p50 (scenario s)", _seconds(wait["p50"])),
            ("wait p90 (scenario s)", _seconds(wait["p90"])),
            ("wait p99 (scenario s)", _seconds(wait["p99"])),
            ("user errors", f"{data['user_errors']:,}"),
        ]
        return [{"metric": m, "value": v} for m, v in pairs]

    @staticmethod
    def operator_rows(data: dict[str, Any]) -> list[dict[str, str]]:
        return [{"operator": str(op["id"]), "online": "yes" if op["online"] else "no",
                 "holding": str(op["holding"]), "assignments": f"{op['assignments']:,}",
                 "repeats": f"{op['repeats']:,}", "premature": f"{op['premature']:,}"}
                for op in data.get("operators", ())]


def install(environment: Any, run: Runtime) -> LiveNumbers | None:
    """Add the route, the tabs and the stats hook to this process's web UI (if it has one)."""
    web_ui = getattr(environment, "web_ui", None)
    if web_ui is None or run.target is not None:
        return None
    from flask import jsonify, request

    live = LiveNumbers(run, environment)

    @web_ui.app.route(ROUTE)
    @web_ui.auth_required_if_enabled
    def chatlab_live() -> Any:
        return jsonify(live.snapshot())

    @web_ui.app.after_request
    def add_extended_stats(response: Any) -> Any:
        if not request.path.endswith("/stats/requests") or response.status_code != 200:
            return response
        body = response.get_json(silent=True)
        if not isinstance(body, dict):
            return response
        data = live.snapshot()
        body["extended_stats"] = [{"key": SUMMARY_TAB, "data": live.summary_rows(data)},
                                  {"key": OPERATORS_TAB, "data": live.operator_rows(data)}]
        response.set_data(json.dumps(body))
        return response

    web_ui.template_args["extended_tabs"] = [{"title": "Chat lab", "key": SUMMARY_TAB},
                                             {"title": "Chat lab: operators", "key": OPERATORS_TAB}]
    web_ui.template_args["extended_tables"] = [
        {"key": SUMMARY_TAB, "structure": [{"key": k, "title": t} for k, t in SUMMARY_COLUMNS]},
        {"key": OPERATORS_TAB, "structure": [{"key": k, "title": t} for k, t in OPERATOR_COLUMNS]},
    ]
    return live
