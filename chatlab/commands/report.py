"""``chatlab report LOG_OR_DIR``: rebuild a report from saved event logs (sim, replay or load test)."""

from __future__ import annotations

import argparse
from pathlib import Path

from chatlab.runner import add_metric_arguments, check_metric_arguments

HELP = "Rebuild a report (tables, metrics.json, plots) from a saved event log."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="LOG_OR_DIR", type=Path,
                        help="an events.parquet/.csv file, a run report dir, or a comparison report dir")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="where to write (default: the report dir itself, or <log dir>/<log name>-report)")
    add_metric_arguments(parser)


def default_destination(source: Path) -> Path:
    """Rebuild in place for report dirs and their events.* files; beside a loose log otherwise."""
    if source.is_dir():
        return source
    if source.name in ("events.parquet", "events.csv"):
        return source.parent
    return source.parent / f"{source.stem}-report"


def main(args: argparse.Namespace) -> int:
    from chatlab.report import load_runs, summary_table, text_table, write_report

    check_metric_arguments(args)
    runs = load_runs(args.source, service_level_t=args.service_level_t, stuck_after=args.stuck_after)
    out = args.out or default_destination(args.source)
    write_report(runs, out)
    print(text_table(summary_table(runs)))
    print(f"report written to {out}/")
    return 0
