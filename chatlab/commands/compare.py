"""``chatlab compare SCENARIO --policies a,b,c [--seeds 1-5]``: the same scenario and seeds under several policies.

Every policy runs on the same seeds (common random numbers as far as the model allows),
so differences between columns come from the policy.  With several seeds each column is
the mean ± std over seeds.
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


def seeds_tag(seeds: list[int | None]) -> str:
    """``seed3`` / ``seeds1-5`` / ``seeds1,4,9`` for default directory names."""
    if len(seeds) == 1:
        return f"seed{seeds[0]}"
    ints = [int(s) for s in seeds if s is not None]
    if ints == list(range(ints[0], ints[0] + len(ints))):
        return f"seeds{ints[0]}-{ints[-1]}"
    return "seeds" + ",".join(map(str, ints))


def main(args: argparse.Namespace) -> int:
    from chatlab.replications import Replication
    from chatlab.report import TERMINAL_ROWS, pooled_runs, summary_table, text_table, write_comparison_report
    from sim.policies import parse_policy_list

    common.check_metric_arguments(args)
    policies = parse_policy_list(args.policies)
    seeds = common.resolve_seeds(args)
    scenario = common.load_scenario_arg(args.scenario, args.duration)
    reps = [Replication(scenario, policy, seed, policy, args.service_level_t, args.stuck_after)
            for policy in policies for seed in seeds]
    runs = common.replicate(args, reps, "compare")
    used = [r.metrics["run"]["seed"] for r in runs[: len(seeds)]]
    out = args.out or common.default_out(scenario.name, f"compare-{seeds_tag(used)}")
    write_comparison_report(runs, out)
    print(text_table(summary_table(pooled_runs(runs), TERMINAL_ROWS)))
    what = "mean ± std over seeds " + ",".join(map(str, used)) if len(seeds) > 1 else f"seed {used[0]}"
    print(f"{len(runs)} runs ({what}); report written to {out}/ "
          f"(summary.md, summary.html, metrics.json, metrics.csv, plots; one sub-directory per run)")
    return 0
