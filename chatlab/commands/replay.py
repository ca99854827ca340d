"""``chatlab replay LOG``: apply a simulation's event log to the SQL functions and report every
assignment decision the database made differently (see :mod:`chatlab.correctness.replay`)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", metavar="LOG", help="events.parquet/events.csv, or a run report directory holding one")
    parser.add_argument("--policy", default=None, metavar="P",
                        help="policy the database decides with (default: the log's)")
    parser.add_argument("--salt", type=int, default=None, metavar="N",
                        help="random policy only: the run's fixed salt (scenario policy.salt); "
                             "a run without one cannot be replayed exactly")
    parser.add_argument("--database-url", default=None, metavar="URL",
                        help="PostgreSQL to use (default: $DATABASE_URL, else a temporary embedded server)")
    parser.add_argument("--schema", default=None, metavar="NAME",
                        help="name of the fresh schema to replay into (default: replay_<random>; dropped afterwards)")
    parser.add_argument("--max-report", type=int, default=10, metavar="N",
                        help="list at most N disagreements (default: 10)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from chatlab.correctness.replay import ReplayError, replay_path

    if args.max_report < 0:
        raise ReplayError(f"--max-report must be >= 0, got {args.max_report}")
    result = replay_path(args.log, policy=args.policy, salt=args.salt, database_url=args.database_url, schema=args.schema,
                         progress=not args.no_progress)
    print(result.summary(args.max_report))
    return 0 if result.ok else 1
