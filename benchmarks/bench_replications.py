"""Do replications use every core?  The same replications with --jobs 1 and --jobs N, in one run.

Runs ``REPS`` replications of a scenario (default ``baseline`` under ``exclude_last``, seeds
1..REPS) through :func:`chatlab.replications.run_replications` with one worker and with N
(default: every core), checks the results are identical, and prints the wall times and the
speed-up (the machines are noisy: both are measured here, each the best of ``--repeat``).

    .venv/bin/python benchmarks/bench_replications.py [--scenario baseline] [--reps 12] [--jobs 2] [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatlab.replications import Replication, default_jobs, run_replications  # noqa: E402
from sim.scenario import load_scenario  # noqa: E402


def best_of(reps: list[Replication], jobs: int, repeat: int) -> tuple[float, list]:
    best, results = float("inf"), []
    for _ in range(repeat):
        t0 = time.perf_counter()
        results = run_replications(reps, jobs=jobs)
        best = min(best, time.perf_counter() - t0)
    return best, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="baseline")
    ap.add_argument("--policy", default="exclude_last")
    ap.add_argument("--reps", type=int, default=12)
    ap.add_argument("--jobs", type=int, default=default_jobs())
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    scenario = load_scenario(args.scenario)
    reps = [Replication(scenario, args.policy, seed, args.policy) for seed in range(1, args.reps + 1)]
    one, base = best_of(reps, 1, args.repeat)
    many, got = best_of(reps, args.jobs, args.repeat)
    same = all(a.metrics == b.metrics for a, b in zip(base, got))
    print(f"{args.reps} replications of {args.scenario}/{args.policy}: 1 job {one:.2f} s, {args.jobs} jobs "
          f"{many:.2f} s; results identical: {same}")
    print(f"replications speed-up with {args.jobs} jobs vs 1: {one / many:.2f}x")


if __name__ == "__main__":
    main()
