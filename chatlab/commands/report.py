"""``chatlab report LOG_OR_DIR``: rebuild a report from saved event logs (any kind of report directory)."""

from __future__ import annotations

import argparse
from pathlib import Path

from chatlab.commands import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="LOG_OR_DIR", type=Path,
                        help="an events.parquet/.csv file, or a run, comparison, load-test or compare-real report dir")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="where to write (default: the report dir itself, or <log dir>/<log name>-report)")
    common.add_metric_arguments(parser)


def default_destination(source: Path) -> Path:
    """Rebuild in place for report dirs and their events.* files; beside a loose log otherwise."""
    if source.is_dir():
        return source
    if source.name in ("events.parquet", "events.csv"):
        return source.parent
    return source.parent / f"{source.stem}-report"


def main(args: argparse.Namespace) -> int:
    from chatlab.report import rebuild, summary_table, text_table

    common.check_metric_arguments(args)
    out = args.out or default_destination(args.source)
    runs = rebuild(args.source, out, service_level_t=args.service_level_t, stuck_after=args.stuck_after)
    print(text_table(summary_table(runs)))
    print(f"report written to {out}/")
    return 0
