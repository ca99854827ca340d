"""``chatlab run SCENARIO``: simulate one scenario with one policy and write a report directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from chatlab.commands.common import add_policy_argument, add_scenario_argument

from chatlab.runner import (
    add_metric_arguments,
    add_simulation_arguments,
    check_metric_arguments,
    default_out,
    load_scenario,
    scenario_name,
    simulate,
    with_duration,
)

HELP = "Simulate one scenario with one policy and write a report."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_scenario_argument(parser)
    add_policy_argument(parser)
    add_simulation_arguments(parser)
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="report directory (default: reports/<scenario>/run-<policy>-seed<N>)")
    add_metric_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from chatlab.metrics import analyse
    from chatlab.report import text_table, summary_table, write_run_report
    from sim.policies import make_policy

    check_metric_arguments(args)
    if args.policy is not None:
        make_policy(args.policy)  # unknown name -> one-line error before simulating
    scenario = with_duration(load_scenario(args.scenario), args.duration)
    log = simulate(scenario, args.policy, args.seed, progress=not args.no_progress)
    run = analyse(log, service_level_t=args.service_level_t, stuck_after=args.stuck_after)
    info = run.metrics["run"]
    out = args.out or default_out(scenario_name(scenario), f"run-{info['policy']}-seed{info['seed']}")
    write_run_report(run, out)
    print(text_table(summary_table([run])))
    print(f"report written to {out}/ (summary.md, summary.html, metrics.json, plots)")
    return 0
