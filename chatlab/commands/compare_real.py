"""``chatlab compare-real SCENARIO``: the simulation's prediction next to the real database.

For each policy: simulate the scenario, load-test the real SQL functions with the same
scenario (same seed, same scenario window), and write one report with both side by side
and the relative difference of each metric (``chatlab/report/sim_vs_db.py``).  With the
default ``--policies legacy,exclude_last`` the report shows the seed's bug on the real
database (legacy repeats) and the fix's zero.  With ``--target FILE.toml`` the database side is
that outside system and ``--policies`` names the one policy it should behave like.
"""

from __future__ import annotations

import argparse

from chatlab.commands import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_scenario_argument(parser)
    common.add_policies_argument(parser, default="legacy,exclude_last")
    common.add_loadtest_arguments(parser)
    common.add_out_argument(parser, "reports/<scenario>/compare-real")


def main(args: argparse.Namespace) -> int:
    from chatlab.metrics import Pair, analyse
    from chatlab.report import write_sim_vs_db_report
    from chatlab.report.sim_vs_db import text_summary
    from loadtest.session import run_load_test
    from sim.model import run_simulation
    from sim.policies import parse_policy_list

    policies = parse_policy_list(args.policies)
    out = args.out or common.default_out(args.scenario, "compare-real")
    if args.target is not None:  # one outside system, beside the model of the policy it should implement
        if len(policies) != 1:
            raise common.UsageError("--policies: with --target give the one policy the target should behave like "
                                    "(the simulation's side), e.g. --policies exclude_last")
        settings = common.loadtest_settings(args, policy=None, out=out / "locust" / "target")
        every = {policies[0]: settings}
    else:
        every = {p: common.loadtest_settings(args, policy=p, out=out / "locust" / p) for p in policies}
    pairs: list[Pair] = []
    notes: list[str] = []
    scenario = every[policies[0]].load_scenario()
    for policy in policies:
        settings = every[policy]
        window = scenario.with_overrides({"duration": settings.duration}) \
            if settings.duration != scenario.duration else scenario
        sim_log = run_simulation(window, policy, seed=settings.seed)
        bar, tick = common.wall_clock_bar(settings.run_time_wall_s, f"load test {policy}", disable=args.no_progress)
        try:
            outcome = run_load_test(settings, on_tick=tick)
        finally:
            bar.close()
        key = policy if args.target is None else settings.policy  # target-<name>
        if args.target is not None:
            notes.append(f"{key}: the simulation side is the model under policy {policy}")
        pairs.append(Pair(key, analyse(sim_log, label=f"sim:{key}"), analyse(outcome.log, label=f"db:{key}")))
        lc = outcome.locust
        notes.append(f"{policy}: load test ran {settings.run_time_wall_s:g} wall s at K={settings.time_scale:g} "
                     f"(scenario window {settings.duration:g} s), {lc.requests} Locust requests, {lc.failures} "
                     f"failures, {outcome.integrity.get('double_assigned')} double assignments in the history; "
                     f"Locust CSVs in locust/{policy if args.target is None else 'target'}/")
        notes += [n for n in outcome.notes if n not in notes]  # same for every policy
    write_sim_vs_db_report(pairs, out, scenario=scenario.name, notes=notes)
    print(text_summary(pairs))
    print(f"report written to {out}/ (summary.md, summary.html, sim_vs_real.csv, metrics.json)")
    return 0
