"""``chatlab calibrate SOURCE --out FILE.toml``: a scenario of your floor, fitted from its history.

SOURCE is a PostgreSQL URL (``postgresql://...``; ``--schema`` names the schema) holding the
seed's tables, or a directory of their CSV exports (``chatlab db export``).  The scenario file
is written only when everything worked; with ``--report DIR`` the period's observed metrics
are put beside the calibrated scenario's simulated ones (``chatlab/report/calibration.py``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from chatlab.commands import common

REPLICATIONS = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE",
                        help="a PostgreSQL URL holding the seed's tables (operators, chats, messages, "
                             "chat_assignments), or a directory of their CSV exports")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE.toml", help="the scenario file to write")
    parser.add_argument("--report", type=Path, default=None, metavar="DIR",
                        help="also write a report: the period's observed metrics beside the calibrated scenario's")
    parser.add_argument("--schema", default="public", help="schema holding the tables (database source; default public)")
    parser.add_argument("--since", default=None, metavar="T", help="first instant of the period (ISO 8601; UTC if no zone)")
    parser.add_argument("--until", default=None, metavar="T", help="end of the period (exclusive)")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="K",
                        help="the history was recorded K times faster than real time (a lab load test at --time-scale "
                             "K); durations are multiplied by K (default 1: a real history)")
    parser.add_argument("--offline-gap", type=float, default=1800.0, metavar="S",
                        help="an operator silent this many seconds was offline (shifts; default %(default)s)")
    parser.add_argument("--name", default=None, help="the scenario's name (default: the output file's stem)")
    parser.add_argument("--replications", type=int, default=REPLICATIONS, metavar="N",
                        help=f"--report: simulate the calibrated scenario with N seeds (default {REPLICATIONS})")
    common.add_progress_argument(parser)


def _check_writable(option: str, path: Path | None) -> None:
    """Before any work: the nearest existing ancestor of ``path`` must be a writable directory."""
    if path is None:
        return
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise common.UsageError(f"{option}: cannot write under {path} ({probe} is not a writable directory)")


def _is_url(source: str) -> bool:
    return source.startswith(("postgresql://", "postgres://")) or source.startswith(("host=", "dbname="))


def main(args: argparse.Namespace) -> int:
    from chatlab.calibration.calibrate import calibrate
    from chatlab.db.migrate import check_schema
    from chatlab.db.seedtables import read_csv_dir, read_database

    out: Path = args.out
    if out.suffix != ".toml" or out.is_dir():
        raise common.UsageError(f"--out: expected a .toml file path, got {str(out)!r}")
    if args.replications < 2 or args.replications > 100:
        raise common.UsageError(f"--replications: expected 2..100, got {args.replications}")
    if args.report is not None and args.report.exists() and not args.report.is_dir():
        raise common.UsageError(f"--report: {args.report} exists and is not a directory")
    for option, path in (("--out", out.parent), ("--report", args.report)):
        _check_writable(option, path)
    name = args.name or out.stem
    check_schema(args.schema)
    tables = read_database(args.source, args.schema) if _is_url(args.source) else read_csv_dir(args.source)
    result = calibrate(tables, since=args.since, until=args.until, time_scale=args.time_scale,
                       offline_gap=args.offline_gap, name=name)
    saved = None
    runs = None
    if args.report is not None:
        saved, runs = _compare(result, args.replications, progress=not args.no_progress)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(result.text)
    except OSError as exc:
        raise common.UsageError(f"--out: cannot write {out} ({exc.strerror or exc})") from None
    print(f"scenario written to {out} ({result.arrivals.summary()})")
    for fit in (result.think, result.handle, result.patience):
        if fit is not None:
            print(f"  {fit.what}: {fit.chosen.family} mean {fit.chosen.mean:.2f} s, sd {fit.chosen.sd:.2f} s "
                  f"(n {fit.n}, KS {fit.ks:.3f})")
    if result.exchanges is not None:
        print(f"  exchanges: {result.exchanges.summary()}")
    print(f"  groups: {', '.join(f'{g.name} x{len(g.operators)}' for g in result.groups)}")
    if saved is not None and runs is not None:
        from chatlab.report import write_calibration_report

        write_calibration_report(runs, args.report, saved, result.text)
        outside = [r["metric"] for r in saved["comparison"] if r["within_noise"] is False]
        print(f"report written to {args.report}/ (summary.md, summary.html, calibration.json, scenario.toml); "
              + ("every compared metric within the simulations' noise" if not outside else
                 f"outside the simulations' noise: {', '.join(outside)}"))
    return 0


def _compare(result, replications: int, *, progress: bool):  # noqa: ANN001, ANN202
    """The observed history and the calibrated scenario's seeds, analysed alike, and the saved results."""
    from chatlab.metrics import analyse
    from chatlab.report.calibration import CALIBRATED, OBSERVED, comparison_rows
    from sim.model import run_simulation

    observed = result.observed.copy()
    observed.attrs.update(result.observed.attrs)
    observed.attrs.update({"scenario": result.scenario.name, "policy": "history", "seed": 0})
    runs = [analyse(observed, label=OBSERVED)]
    sims = []
    bar = common.progress_bar(replications, "simulating the calibrated scenario", disable=not progress)
    try:
        for seed in range(1, replications + 1):
            sims.append(analyse(run_simulation(result.scenario, seed=seed), label=CALIBRATED))
            bar.update(1)
    finally:
        bar.close()
    runs += sims
    saved = {"name": result.scenario.name, **result.to_dict(), "replications": replications,
             "comparison": comparison_rows(runs[0], sims)}
    return saved, runs
