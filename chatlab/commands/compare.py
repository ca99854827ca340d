"""``chatlab compare SCENARIO --policies a,b,c``: the same scenario and seed under several policies."""

from __future__ import annotations

import argparse
from pathlib import Path

from chatlab.runner import (
    add_metric_arguments,
    add_simulation_arguments,
    check_metric_arguments,
    default_out,
    load_scenario,
    progress_bar,
    scenario_name,
    simulate,
    with_duration,
)

HELP = "Simulate one scenario under several policies side by side."
ALL = "legacy,exclude_last,exclude_last_fallback,round_robin,least_loaded,longest_idle,random"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario name (see scenarios/) or path to a .toml file")
    parser.add_argument("--policies", default=ALL, metavar="A,B,C",
                        help=f"comma-separated policies (default: all seven: {ALL})")
    add_simulation_arguments(parser, seed_help="random seed, the same for every policy (default: the scenario's)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="report directory (default: reports/<scenario>/compare-seed<N>)")
    add_metric_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from chatlab.metrics import analyse
    from chatlab.report import summary_table, text_table, write_comparison_report
    from sim.policies import parse_policy_list

    check_metric_arguments(args)
    policies = parse_policy_list(args.policies)
    scenario = with_duration(load_scenario(args.scenario), args.duration)
    runs = []
    with progress_bar(len(policies), "policies", disable=args.no_progress) as bar:
        for policy in policies:
            bar.set_postfix_str(policy)
            log = simulate(scenario, policy, args.seed)
            runs.append(analyse(log, label=policy, service_level_t=args.service_level_t, stuck_after=args.stuck_after))
            bar.update()
    seed = runs[0].metrics["run"]["seed"]
    out = args.out or default_out(scenario_name(scenario), f"compare-seed{seed}")
    write_comparison_report(runs, out)
    print(text_table(summary_table(runs)))
    print(f"report written to {out}/ (summary.md, summary.html, metrics.json, plots; one sub-directory per policy)")
    return 0
