"""``chatlab compare SCENARIO --policies a,b,c [--seeds 1-5]``: the same scenario and seeds under several policies.

Every policy runs on the same seeds (common random numbers as far as the model allows),
so differences between columns come from the policy.  With several seeds each column is
the mean ± the half-width of its 95 % confidence interval over seeds (Student t).
"""

from __future__ import annotations

import argparse

from chatlab.commands import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_scenario_argument(parser)
    common.add_policies_argument(parser, default=common.ALL_POLICIES)
    common.add_simulation_arguments(parser, seed_help="random seed, the same for every policy (default: the scenario's)",
                                    multi_seed=True)
    common.add_out_argument(parser, "reports/<scenario>/compare-seed<N>")
    common.add_metric_arguments(parser)
    common.add_parallel_arguments(parser)
    parser.add_argument("--precision", type=float, default=None, metavar="R",
                        help="keep adding seeds until every key metric's 95 %% half-width is at most R x its mean "
                             "(e.g. 0.02), starting from --seeds (default 1-3)")
    parser.add_argument("--max-seeds", type=int, default=50, metavar="N",
                        help="--precision: stop after N seeds even if not precise enough (default 50)")
    parser.add_argument("--baseline", default=None, metavar="P",
                        help="also show each policy's paired difference from P over the same seeds, with its 95 %% "
                             "confidence interval (needs --seeds with at least 2 seeds)")


def seeds_tag(seeds: list[int | None]) -> str:
    """``seed3`` / ``seeds1-5`` / ``seeds1,4,9`` for default directory names."""
    if len(seeds) == 1:
        return f"seed{seeds[0]}"
    ints = [int(s) for s in seeds if s is not None]
    if ints == list(range(ints[0], ints[0] + len(ints))):
        return f"seeds{ints[0]}-{ints[-1]}"
    return "seeds" + ",".join(map(str, ints))


def main(args: argparse.Namespace) -> int:
    from chatlab.replications import Replication, check_jobs
    from chatlab.replications.precision import until_precise
    from chatlab.report import TERMINAL_ROWS, paired, pooled_runs, summary_table, text_table, write_comparison_report
    from sim.policies import parse_policy_list

    common.check_metric_arguments(args)
    policies = parse_policy_list(args.policies)
    if args.precision is not None:
        if not (0 < args.precision < 1):
            raise common.UsageError(f"--precision: expected a fraction between 0 and 1 (e.g. 0.02), got {args.precision}")
        if args.seeds is None and args.seed is None:
            args.seeds = "1-3"
    if not (2 <= args.max_seeds <= 10_000):
        raise common.UsageError(f"--max-seeds: expected 2..10000, got {args.max_seeds}")
    seeds = common.resolve_seeds(args)
    if args.precision is not None and (len(seeds) < 2 or None in seeds):
        raise common.UsageError("--precision: start from at least 2 seeds (--seeds 1-3)")
    if args.baseline is not None:
        if args.baseline not in policies:
            raise common.UsageError(f"--baseline: {args.baseline!r} is not one of --policies ({', '.join(policies)})")
        if len(seeds) < 2 or len(policies) < 2:
            raise common.UsageError("--baseline: needs at least 2 seeds (--seeds) and 2 policies to pair")
    scenario = common.load_scenario_arg(args.scenario, args.duration, common.scenario_overrides(args))
    def batch(chosen: list) -> list:
        reps = [Replication(scenario, policy, seed, policy, args.service_level_t, args.stuck_after)
                for policy in policies for seed in chosen]
        return common.replicate(args, reps, "compare")

    reached = None
    if args.precision is not None:
        runs, reached = until_precise(batch, seeds, precision=args.precision, max_seeds=args.max_seeds,
                                      batch=max(2, check_jobs(args.jobs)))
        order = {p: i for i, p in enumerate(policies)}  # batches interleave; the report wants policy order
        runs = sorted(runs, key=lambda r: (order[r.label], r.metrics["run"]["seed"]))
        seeds = list(reached.seeds)
    else:
        runs = batch(seeds)
    used = [r.metrics["run"]["seed"] for r in runs[: len(seeds)]]
    out = args.out or common.default_out(scenario.name, f"compare-{seeds_tag(used)}")
    differences = paired.compute(runs, args.baseline) if args.baseline is not None else None
    write_comparison_report(runs, out, extra=[paired.section(differences)] if differences else [])
    if differences:
        paired.write_file(differences, out)
    print(text_table(summary_table(pooled_runs(runs), TERMINAL_ROWS)))
    if reached is not None:
        print(reached.summary(args.precision))
    if differences:
        print()
        print(text_table(paired.display_table(differences)))
        print(f"paired differences from {args.baseline} over the same seeds, ± 95 % CI; * = the interval excludes 0")
    what = "mean ± 95 % CI over seeds " + seeds_tag(used)[5:] if len(seeds) > 1 else f"seed {used[0]}"
    print(f"{len(runs)} runs ({what}); report written to {out}/ "
          f"(summary.md, summary.html, metrics.json, metrics.csv, plots; one sub-directory per run)")
    return 0
