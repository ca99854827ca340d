"""``chatlab compare-real SCENARIO``: the simulation's prediction next to the real database.

For each policy: simulate the scenario, load-test the real SQL functions with the same
scenario (same seed, same scenario window), and write one report with both side by side
and the relative difference of each metric (``loadtest/comparison.py``).  With the
default ``--policy legacy,exclude_last`` the report shows the seed's bug on the real
database (legacy repeats) and the fix's zero.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chatlab.commands.common import add_scenario_argument

from chatlab.commands.loadtest import add_loadtest_arguments, options_from_args, progress

HELP = "Run simulation and load test on one scenario and compare them."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_scenario_argument(parser)
    parser.add_argument("--policy", "--policies", dest="policy", default="legacy,exclude_last", metavar="P[,P...]",
                        help="policies to compare, comma-separated (default legacy,exclude_last)")
    add_loadtest_arguments(parser)
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="report directory (default: reports/<scenario>/compare-real)")


def simulate_window(scenario: object, policy: str, seed: int, duration: float):  # noqa: ANN201
    """The simulation of the same scenario window the load test covered."""
    from sim.model import run_simulation

    from loadtest.flowparams import with_duration

    log = run_simulation(with_duration(scenario, duration), policy, seed=seed)
    log.attrs.setdefault("source", "sim")
    return log


def main(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from chatlab.metrics import analyse
    from loadtest.comparison import Pair, text_summary, write_sim_vs_real_report
    from loadtest.session import plan, run_load_test, write_loadtest_files
    from sim.policies import parse_policy_list

    policies = parse_policy_list(args.policy)
    out = args.out or Path("reports") / Path(args.scenario).stem / "compare-real"
    pairs: list[Pair] = []
    notes: list[str] = []
    plans = {p: plan(options_from_args(args, policy=p, out=None)) for p in policies}  # validate all first
    for policy in policies:
        the_plan = plans[policy]
        scenario, seed, run_time, duration = the_plan.scenario, the_plan.seed, the_plan.run_time_s, the_plan.duration
        sim_log = simulate_window(scenario, policy, seed, duration)
        bar, tick = progress(run_time, f"load test {policy}", disable=args.no_progress)
        try:
            outcome = run_load_test(replace(options_from_args(args, policy=policy, out=None),
                                            out_dir=out / "locust" / policy, on_tick=tick))
        finally:
            bar.close()
        write_loadtest_files(outcome, out / "locust" / policy)
        pairs.append(Pair(policy, analyse(sim_log, label=f"sim:{policy}"), analyse(outcome.log, label=f"db:{policy}")))
        lc, checks = outcome.locust, outcome.extras.get("integrity", {})
        notes.append(f"{policy}: load test ran {run_time:g} wall s at K={args.time_scale:g} "
                     f"(scenario window {duration:g} s), {lc.requests} Locust requests, {lc.failures} failures, "
                     f"{checks.get('double_assigned')} double assignments in the history; "
                     f"Locust CSVs in locust/{policy}/")
        notes += [n for n in outcome.extras.get("notes", []) if n not in notes]  # same for every policy
    write_sim_vs_real_report(pairs, out, scenario=str(getattr(plans[policies[0]].scenario, "name", args.scenario)), notes=notes)
    print(text_summary(pairs))
    print(f"report written to {out}/ (summary.md, summary.html, sim_vs_real.csv, metrics.json)")
    return 0
