"""``chatlab loadtest SCENARIO``: the Locust suite against the real PostgreSQL functions.

Brings up the database (``DATABASE_URL`` or a temporary embedded server), migrates a fresh
schema, seeds the scenario's operators, runs Locust (headless, or ``--web`` on loopback)
for a bounded time, then turns the history tables into the event log and writes the same
report as ``chatlab run`` plus Locust's CSV statistics.  Details: ``loadtest/session.py``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from chatlab.commands.common import add_policy_argument, add_scenario_argument

HELP = "Run the Locust suite against the real database for a scenario."


def add_loadtest_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared with ``chatlab compare-real``."""
    parser.add_argument("--time-scale", type=float, default=60.0, metavar="K",
                        help="scenario seconds per wall second (default 60: a simulated hour in a minute)")
    parser.add_argument("--run-time", type=float, default=None, metavar="S",
                        help="wall seconds to run (default: the scenario's duration / K); "
                             "the scenario window covered is S x K")
    parser.add_argument("--users", type=int, default=None, metavar="N",
                        help="at most N concurrent simulated real users (default: sized from the arrival "
                             "rate by Little's law); operators and the housekeeping job come on top")
    parser.add_argument("--seed", type=int, default=None, metavar="N", help="random seed (default: the scenario's)")
    parser.add_argument("--database-url", default=None, metavar="URL",
                        help="PostgreSQL to use (default: $DATABASE_URL, else a temporary embedded server)")
    parser.add_argument("--keep-schema", action="store_true",
                        help="keep the run's schema afterwards (default: dropped); useful with a database "
                             "URL only: a temporary server is deleted anyway")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_scenario_argument(parser)
    add_policy_argument(parser)
    add_loadtest_arguments(parser)
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="report directory (default: reports/<scenario>/loadtest-<policy>)")
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


def options_from_args(args: argparse.Namespace, *, policy: str | None, out: Path | None):  # noqa: ANN201
    """The :class:`loadtest.session.LoadTestOptions` of parsed arguments."""
    from loadtest.session import LoadTestOptions

    return LoadTestOptions(
        scenario=args.scenario, policy=policy, time_scale=args.time_scale, run_time_s=args.run_time,
        users=args.users, out_dir=out, seed=args.seed, database_url=args.database_url,
        keep_schema=args.keep_schema, web=getattr(args, "web", False), web_port=getattr(args, "web_port", 8089),
        expect_workers=getattr(args, "expect_workers", 0), local_workers=getattr(args, "local_workers", 0),
        master_bind_host=getattr(args, "master_bind_host", "127.0.0.1"),
        master_port=getattr(args, "master_port", 5557),
    )


def progress(total_s: float, desc: str, *, disable: bool):  # noqa: ANN201
    """A tqdm bar over wall seconds, and the ``on_tick`` callback that advances it."""
    from tqdm import tqdm

    bar = tqdm(total=int(round(total_s)), desc=desc, unit="s", disable=disable, leave=False)

    def tick(elapsed: float) -> None:
        bar.n = min(int(elapsed), bar.total)
        bar.refresh()

    return bar, tick


def main(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from chatlab.metrics import analyse
    from chatlab.report import summary_table, text_table, write_run_report
    from loadtest.session import plan, run_load_test, write_loadtest_files

    opts = options_from_args(args, policy=args.policy, out=args.out)
    the_plan = plan(opts)  # validates everything before any server starts
    policy, run_time, duration = the_plan.policy, the_plan.run_time_s, the_plan.duration
    out = args.out or Path("reports") / Path(args.scenario).stem / f"loadtest-{policy}"
    bar, tick = progress(run_time, f"load test {policy}", disable=args.no_progress or args.web)
    if args.web:
        print(f"Locust web UI: http://127.0.0.1:{args.web_port} (runs {run_time:g} s, then quits)")
    try:
        outcome = run_load_test(replace(opts, out_dir=out, on_tick=tick))
    finally:
        bar.close()
    run = analyse(outcome.log, label=f"db:{policy}")
    write_run_report(run, out, title=f"Load test report: {run.metrics['run'].get('scenario')} / {policy}")
    write_loadtest_files(outcome, out)
    print(text_table(summary_table([run])))
    lc = outcome.locust
    total = lc.requests
    checks = outcome.extras.get("integrity", {})
    print(f"Locust: {total} requests, {lc.failures} failures, {total / max(run_time, 1e-9):.0f} req/s over "
          f"{run_time:g} wall s; scenario window {duration:g} s at K={args.time_scale:g}; "
          f"wall time {outcome.wall_s:.0f} s")
    print(f"history: {checks.get('assignments')} holds, {checks.get('double_assigned')} double assignments, "
          f"{checks.get('over_capacity')} over capacity")
    for note in outcome.extras.get("notes", []):
        print(f"note: {note}")
    if args.keep_schema and (args.database_url or os.environ.get("DATABASE_URL")):
        print(f"schema kept: {outcome.schema} (psql: SET search_path TO {outcome.schema};)")
    print(f"report written to {out}/ (summary.md, metrics.json, events.parquet, locust_stats.csv, plots)")
    return 0
