"""``chatlab sweep SCENARIO --policies a,b --seeds 1-5 --set operators.count=3,4,5``: a grid of runs.

Every combination of the ``--set`` values x policies x seeds is simulated; the result is a
CSV with one row per run (the overrides, policy, seed and every metric, dotted names as in
``metrics.json``), a summary CSV (mean and std over seeds) and a plot of the key metrics
against the first swept field (or the policy when nothing is swept).
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from chatlab.commands import common

PLOTTED = (
    ("assignment.repeat_rate", "repeat rate (share of assigns)"),
    ("wait.p90_s", "p90 wait (s)"),
    ("fairness.assignments_per_online_hour.jain", "Jain index (assignments per online h)"),
    ("wait.abandonment_rate", "abandonment rate (share of chats)"),
)
SUMMARISED = (
    "assignment.repeat_rate", "assignment.premature_rate", "fairness.assignments.gini",
    "fairness.assignments_per_online_hour.jain", "wait.mean_s", "wait.p90_s", "wait.p99_s",
    "wait.service_level", "wait.abandonment_rate", "health.queue_mean",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_scenario_argument(parser)
    common.add_policies_argument(parser, default="legacy,exclude_last")
    parser.add_argument("--seeds", default="1-3", metavar="SEEDS", help="seeds: N, A-B or a list like 1-5,9 (default 1-3)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="FIELD=V1,V2",
                        help="sweep a scenario field over values, e.g. operators.count=3,4,5 (repeatable: grid)")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="simulate only this many scenario seconds (default: the scenario's duration)")
    common.add_out_argument(parser, "reports/<scenario>/sweep")
    common.add_progress_argument(parser)
    common.add_warmup_argument(parser)
    common.add_metric_arguments(parser)
    common.add_parallel_arguments(parser)


#: ``"operators.count=3,4,5"`` -> ("operators.count", [3, 4, 5]); the one parser of ``--set`` (common).
parse_set = common.parse_set


@dataclass(frozen=True)
class GridPoint:
    """One run of a grid: parameter overrides, policy, seed."""

    overrides: tuple[tuple[str, Any], ...]
    policy: str
    seed: int | None

    @property
    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in self.overrides] + [self.policy]
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        return " ".join(parts)


def grid(sets: Sequence[tuple[str, list[Any]]], policies: Sequence[str], seeds: Sequence[int | None]) -> Iterator[GridPoint]:
    """The cartesian product of every --set's values x policies x seeds."""
    fields = [f for f, _ in sets]
    if len(set(fields)) != len(fields):
        raise common.UsageError(f"--set given twice for the same field: {fields}")
    for combo in itertools.product(*(values for _, values in sets)):
        for policy in policies:
            for seed in seeds:
                yield GridPoint(tuple(zip(fields, combo)), policy, seed)


def main(args: argparse.Namespace) -> int:
    import pandas as pd

    from chatlab.metrics import flatten_metrics
    from chatlab.replications import Replication
    from chatlab.report import markdown_table, text_table
    from chatlab.report.document import short_number
    from chatlab.report.plots import plot_sweep
    from sim.policies import parse_policy_list

    common.check_metric_arguments(args)
    policies = parse_policy_list(args.policies)
    seeds = common.parse_seeds(args.seeds)
    sets = [parse_set(s) for s in args.sets]
    base = common.load_scenario_arg(args.scenario, args.duration, common.warmup_overrides(args))
    points = list(grid(sets, policies, seeds))
    # Build every scenario variant first: a bad --set fails before hours of simulation.
    variants = {p.overrides: base.with_overrides(dict(p.overrides)) if p.overrides else base for p in points}
    reps = [Replication(variants[p.overrides], p.policy, p.seed, p.label, args.service_level_t, args.stuck_after,
                        keep_log=False) for p in points]
    rows = []
    for point, run in zip(points, common.replicate(args, reps, "sweep")):
        metrics = run.metrics
        rows.append({**dict(point.overrides), "policy": point.policy, "seed": metrics["run"]["seed"],
                     **flatten_metrics(metrics)})
    table = pd.DataFrame(rows)
    out = args.out or common.default_out(base.name, "sweep")
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "sweep.csv", index=False)
    keys = [f for f, _ in sets] + ["policy"]
    summary = table.groupby(keys, sort=False)[list(SUMMARISED)].agg(["mean", "std"])
    summary.columns = [f"{k}.{stat}" for k, stat in summary.columns]
    summary.insert(0, "runs", table.groupby(keys, sort=False).size())
    summary.reset_index().to_csv(out / "sweep_summary.csv", index=False)
    x = sets[0][0] if sets else "policy"
    if len(sets) > 1:  # other swept fields become part of the line label
        table["group"] = table[[f for f, _ in sets[1:]] + ["policy"]].astype(str).agg(" ".join, axis=1)
    else:
        table["group"] = table["policy"]
    plot_sweep(table, out / "sweep.png", x=x, metrics=PLOTTED, group="group",
               title=f"Sweep of {base.name} over {x}")
    view = table.groupby(keys, sort=False)[[k for k, _ in PLOTTED]].mean()
    view.columns = [label for _, label in PLOTTED]
    shown = view.map(lambda v: "-" if pd.isna(v) else short_number(v))
    shown.index = [" ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in shown.index]
    shown.index.name = " ".join(keys)
    print(text_table(shown))
    (out / "sweep.md").write_text(f"# Sweep of {base.name}\n\nMeans over seeds {args.seeds}.\n\n"
                                  + markdown_table(shown) + "\n\n![sweep](sweep.png)\n")
    print(f"sweep of {len(points)} runs written to {out}/ (sweep.csv, sweep_summary.csv, sweep.png, sweep.md)")
    return 0
