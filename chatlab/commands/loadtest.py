"""``chatlab loadtest SCENARIO``: the Locust suite against the real PostgreSQL functions.

Brings up the database (``DATABASE_URL`` or a temporary embedded server), migrates a fresh
schema, seeds the scenario's operators, runs Locust (headless, or ``--web`` on loopback)
for a bounded time, then turns the history tables into the event log and writes the same
report as ``chatlab run`` plus the load test's section and Locust's CSV statistics.
Details: ``loadtest/session.py``.

Exit status: 0; 2 for a mistake or a run that produced nothing usable (one line, no
report); 1 when a distributed run lost a Locust worker mid-run — the report is written,
with a note, but it is not the scenario's (``loadtest/workerwatch.py``).
"""

from __future__ import annotations

import argparse
import sys

from chatlab.commands import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_scenario_argument(parser)
    common.add_policy_argument(parser)
    common.add_loadtest_arguments(parser)
    common.add_out_argument(parser, "reports/<scenario>/loadtest-<policy>")
    parser.add_argument("--web", action="store_true",
                        help="run with Locust's web UI on http://127.0.0.1:PORT (starts at once, quits 5 s after the run)")
    parser.add_argument("--web-port", type=int, default=8089, metavar="PORT", help="web UI port (default 8089)")
    dist = parser.add_argument_group("distributed mode (Locust master/workers)")
    dist.add_argument("--expect-workers", type=int, default=0, metavar="N",
                      help="run Locust as master and wait (up to 60 s) for N workers; a worker is "
                           "'python -m locust -f loadtest/locustfile.py --worker --master-host HOST' "
                           "in a checkout of this project (the master sends it the run's configuration)")
    dist.add_argument("--local-workers", type=int, default=0, metavar="N",
                      help="start N of the expected workers on this machine")
    dist.add_argument("--master-bind-host", default="127.0.0.1", metavar="HOST",
                      help="interface the master listens on for workers (default loopback only)")
    dist.add_argument("--master-port", type=int, default=5557, metavar="PORT", help="master port (default 5557)")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from chatlab.metrics import analyse
    from chatlab.report import summary_table, text_table, write_loadtest_report
    from loadtest.session import run_load_test

    settings = common.loadtest_settings(args, policy=args.policy, out=args.out)  # validated before any server starts
    out = Path(settings.out_dir)
    bar, tick = common.wall_clock_bar(settings.run_time_wall_s, f"load test {settings.policy}",
                               disable=args.no_progress or args.web)
    if args.web:
        print(f"Locust web UI: http://127.0.0.1:{args.web_port} (runs {settings.run_time_wall_s:g} s, then quits)")
    try:
        outcome = run_load_test(settings, on_tick=tick)
    finally:
        bar.close()
    run = analyse(outcome.log, label=f"db:{settings.policy}")
    write_loadtest_report(run, out, outcome.results())
    print(text_table(summary_table([run])))
    lc, checks = outcome.locust, outcome.integrity
    print(f"Locust: {lc.requests} requests, {lc.failures} failures, "
          f"{lc.requests / max(settings.run_time_wall_s, 1e-9):.0f} req/s over {settings.run_time_wall_s:g} wall s; "
          f"scenario window {settings.duration:g} s at K={settings.time_scale:g}; wall time {outcome.wall_s:.0f} s")
    print(f"history: {checks.get('assignments')} holds, {checks.get('double_assigned')} double assignments, "
          f"{checks.get('over_capacity')} over capacity")
    for note in outcome.notes:
        print(f"note: {note}")
    if settings.keep_schema and settings.database_url:
        print(f"schema kept: {outcome.schema} (psql: SET search_path TO {outcome.schema};)")
    print(f"report written to {args.out or out}/ (summary.md, metrics.json, events.parquet, locust_stats.csv, plots)")
    if outcome.workers_lost:  # the report is written, but it is not the scenario's: say so, exit 1
        print(f"chatlab loadtest: the run lost {len(outcome.workers_lost)} Locust worker(s) mid-run; "
              "the report is written but its numbers are not the scenario's (see the note)", file=sys.stderr)
        return 1
    if lc.failures:  # e.g. the database was down a while: written, noted, not a success
        print(f"chatlab loadtest: {lc.failures} database calls failed; the report is written but its numbers "
              "are not the scenario's (see the note and locust_failures.csv)", file=sys.stderr)
        return 1
    return 0
