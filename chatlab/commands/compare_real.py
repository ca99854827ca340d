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
from pathlib import Path

from chatlab.commands import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_scenario_argument(parser)
    common.add_policies_argument(parser, default="legacy,exclude_last")
    common.add_loadtest_arguments(parser)
    parser.add_argument("--seeds", default=None, metavar="SEEDS",
                        help="replicate both sides: N, A-B or a list (each seed a simulation and a load test); each "
                             "metric then has a 95 %% interval per side and a difference is flagged only beyond the noise")
    common.add_out_argument(parser, "reports/<scenario>/compare-real")


def main(args: argparse.Namespace) -> int:
    from chatlab.metrics import Pair, analyse, pool
    from chatlab.report import write_sim_vs_db_report
    from chatlab.report.sim_vs_db import text_summary
    from loadtest.session import run_load_test
    from sim.model import run_simulation
    from sim.policies import parse_policy_list

    policies = parse_policy_list(args.policies)
    out = args.out or common.default_out(args.scenario, "compare-real")
    seeds: list = [args.seed] if args.seeds is None else common.parse_seeds(args.seeds)
    if args.seeds is not None and args.seed is not None:
        raise common.UsageError("give either --seed or --seeds, not both")
    if args.target is not None and len(policies) != 1:  # one outside system, beside the model of its policy
        raise common.UsageError("--policies: with --target give the one policy the target should behave like "
                                "(the simulation's side), e.g. --policies exclude_last")

    def settings_for(policy: str, seed) -> object:  # noqa: ANN001
        one = argparse.Namespace(**{**vars(args), "seed": seed})
        where = out / "locust" / (policy if args.target is None else "target")
        if len(seeds) > 1:
            where = where / f"seed{seed}"
        return common.loadtest_settings(one, policy=None if args.target is not None else policy, out=where)

    every = {(p, s): settings_for(p, s) for p in policies for s in seeds}  # every run validated first
    pairs: list[Pair] = []
    notes: list[str] = []
    runs = []
    scenario = every[(policies[0], seeds[0])].load_scenario()
    for policy in policies:
        sims, dbs = [], []
        for seed in seeds:
            settings = every[(policy, seed)]
            window = scenario.with_overrides({"duration": settings.duration}) \
                if settings.duration != scenario.duration else scenario
            key = policy if args.target is None else settings.policy  # target-<name>
            sims.append(analyse(run_simulation(window, policy, seed=settings.seed), label=f"sim:{key}"))
            bar, tick = common.wall_clock_bar(settings.run_time_wall_s, f"load test {key} seed {settings.seed}",
                                              disable=args.no_progress)
            try:
                outcome = run_load_test(settings, on_tick=tick)
            finally:
                bar.close()
            dbs.append(analyse(outcome.log, label=f"db:{key}"))
            lc = outcome.locust
            notes.append(f"{key} (seed {settings.seed}): load test ran {settings.run_time_wall_s:g} wall s at "
                         f"K={settings.time_scale:g} (scenario window {settings.duration:g} s), {lc.requests} Locust "
                         f"requests, {lc.failures} failures, {outcome.integrity.get('double_assigned')} double "
                         f"assignments in the history; Locust CSVs in {Path(settings.out_dir).relative_to(out.resolve())}/")
            notes += [n for n in outcome.notes if n not in notes]  # same for every policy
        if args.target is not None:
            notes.append(f"{key}: the simulation side is the model under policy {policy}")
        pairs.append(Pair(key, pool(f"sim:{key}", sims), pool(f"db:{key}", dbs)))
        runs += sims + dbs
    write_sim_vs_db_report(pairs, out, scenario=scenario.name, notes=notes, runs=runs)
    print(text_summary(pairs))
    print(f"report written to {out}/ (summary.md, summary.html, sim_vs_real.csv, metrics.json)")
    return 0
