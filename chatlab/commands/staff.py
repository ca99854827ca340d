"""``chatlab staff SCENARIO --target-sl 0.8 --within 60``: the fewest operators per interval that meet a service level.

Erlang C (Erlang A when users give up) at each interval's offered load as the start, then
the plan simulated and corrected (:mod:`chatlab.staffing`).  Writes a table, ``staff.csv``,
``staff.json``, ``staff.png`` (staff per interval against the load) and a summary page.
"""

from __future__ import annotations

import argparse
import math

from chatlab.commands import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_scenario_argument(parser)
    parser.add_argument("--target-sl", type=float, required=True, metavar="R",
                        help="the service level to meet: share of waits assigned within --within (e.g. 0.8)")
    parser.add_argument("--within", type=float, required=True, metavar="S", help="the service level's threshold T (s)")
    parser.add_argument("--interval", type=float, default=3600.0, metavar="S",
                        help="planning interval (default 3600 s: staff per hour)")
    parser.add_argument("--max-abandonment", type=float, default=None, metavar="R",
                        help="also keep the share of chats abandoned at most R")
    parser.add_argument("--seeds", default="1-3", metavar="SEEDS",
                        help="replications per simulation round (default 1-3)")
    common.add_set_argument(parser)
    common.add_out_argument(parser, "reports/<scenario>/staff")
    common.add_parallel_arguments(parser)
    common.add_progress_argument(parser)


def main(args: argparse.Namespace) -> int:
    from chatlab.replications import check_jobs
    from chatlab.report.staff import write_staff_report
    from chatlab.report.tables import text_table
    from chatlab.staffing import check_floor, plan_staff

    if not (0 < args.target_sl < 1):
        raise common.UsageError(f"--target-sl: expected a share between 0 and 1 (e.g. 0.8), got {args.target_sl:g}")
    if not (args.within > 0 and math.isfinite(args.within)):
        raise common.UsageError(f"--within: expected seconds > 0, got {args.within:g}")
    if args.max_abandonment is not None and not (0 <= args.max_abandonment < 1):
        raise common.UsageError(f"--max-abandonment: expected a share in [0, 1), got {args.max_abandonment:g}")
    scenario = common.load_scenario_arg(args.scenario, None, common.scenario_overrides(args))
    if not (60 <= args.interval <= scenario.duration):
        raise common.UsageError(f"--interval: expected 60 s .. the scenario's duration ({scenario.duration:g} s), "
                                f"got {args.interval:g}")
    check_floor(scenario)
    seeds = common.parse_seeds(args.seeds)
    check_jobs(args.jobs)
    bar = common.progress_bar(1, "staff: simulating", disable=args.no_progress, unit="round")

    def on_round(n: int, what: str) -> None:
        bar.total = n + 1
        bar.set_postfix_str(what)
        bar.update()

    try:
        plan = plan_staff(scenario, target_sl=args.target_sl, within=args.within, interval=args.interval,
                          max_abandonment=args.max_abandonment, seeds=seeds, jobs=args.jobs, dask=args.dask,
                          on_round=on_round)
    finally:
        bar.close()
    out = args.out or common.default_out(scenario.name, "staff")
    table = write_staff_report(plan, out)
    print(text_table(table))
    total_erlang = sum(i.erlang_staff * (i.end - i.start) for i in plan.intervals) / 3600
    total = sum(i.staff * (i.end - i.start) for i in plan.intervals) / 3600
    print(f"{'met' if plan.met else 'NOT settled'} after {plan.rounds} simulation rounds ({len(seeds)} seeds each): "
          f"{total:.1f} operator-hours (Erlang: {total_erlang:.1f}); report written to {out}/ "
          "(summary.md, staff.csv, staff.json, staff.png)")
    return 0
