"""``chatlab run SCENARIO``: simulate one scenario with one policy and write a report directory."""

from __future__ import annotations

import argparse

from chatlab.commands import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_scenario_argument(parser)
    common.add_policy_argument(parser)
    common.add_simulation_arguments(parser, multi_seed=True)
    common.add_out_argument(parser, "reports/<scenario>/run-<policy>-seed<N>")
    common.add_metric_arguments(parser)
    common.add_parallel_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from chatlab.metrics import analyse
    from chatlab.report import summary_table, text_table, write_run_report
    from sim.model import run_simulation
    from sim.policies import make_policy

    from chatlab.replications import check_jobs

    common.check_metric_arguments(args)
    check_jobs(args.jobs)  # even with one seed: a bad --jobs is a mistake, not ignored
    if args.policy is not None:
        make_policy(args.policy)  # unknown name -> one-line error before simulating
    scenario = common.load_scenario_arg(args.scenario, args.duration, common.scenario_overrides(args))
    seeds = common.resolve_seeds(args)
    if len(seeds) > 1:  # one policy over several seeds: a comparison of one column, mean ± 95 % CI
        from chatlab.replications import Replication
        from chatlab.report import pooled_runs, write_comparison_report

        label = args.policy or scenario.policy.name
        reps = [Replication(scenario, args.policy, seed, label, args.service_level_t, args.stuck_after)
                for seed in seeds]
        runs = common.replicate(args, reps, "run")
        out = args.out or common.default_out(scenario.name, f"run-{label}-seeds{seeds[0]}-{seeds[-1]}")
        write_comparison_report(runs, out, title=f"Run report: {scenario.name} / {label}")
        print(text_table(summary_table(pooled_runs(runs))))
        print(f"{len(runs)} seeds; report written to {out}/ (summary.md, summary.html, metrics.json, plots; "
              "one sub-directory per seed)")
        return 0
    log = run_simulation(scenario, args.policy, seed=seeds[0], progress=not args.no_progress)
    run = analyse(log, service_level_t=args.service_level_t, stuck_after=args.stuck_after)
    info = run.metrics["run"]
    out = args.out or common.default_out(scenario.name, f"run-{info['policy']}-seed{info['seed']}")
    write_run_report(run, out)
    print(text_table(summary_table([run])))
    print(f"report written to {out}/ (summary.md, summary.html, metrics.json, plots)")
    return 0
