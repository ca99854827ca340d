"""How fast is the simulation, and how does it scale with load?  (events/s, peak memory)

Runs ``baseline`` at 1x load (the reference, measured in this same run) and at higher
loads: arrivals ``users.arrivals.scale = k`` *and* ``operators.count = k x 6`` so the
utilisation stays the same and only the size grows.  For each it prints wall time, log
rows ("events"), events per wall second and peak Python memory (tracemalloc, measured in
a separate run so it does not slow the timing), each also as a ratio to 1x.  Linear
scaling means events/s ratio ~1 and memory ratio ~k.

    .venv/bin/python benchmarks/bench_sim.py [--loads 1,4] [--policy exclude_last] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.model import run_simulation  # noqa: E402
from sim.scenario import Scenario, load_scenario  # noqa: E402


def scaled(base: Scenario, k: float) -> Scenario:
    return base.with_overrides({"users.arrivals.scale": k, "operators.count": max(1, round(base.operators.count * k))})


def measure(scenario: Scenario, policy: str, repeat: int) -> dict[str, float]:
    best = float("inf")
    rows = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        log = run_simulation(scenario, policy, seed=1)
        best = min(best, time.perf_counter() - t0)
        rows = len(log)
        del log
    tracemalloc.start()
    run_simulation(scenario, policy, seed=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"wall_s": best, "events": rows, "events_per_s": rows / best, "peak_mib": peak / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="baseline")
    parser.add_argument("--loads", default="1,4", help="comma-separated load factors (1 is always measured first)")
    parser.add_argument("--policy", default="exclude_last")
    parser.add_argument("--repeat", type=int, default=3, help="timing runs per load (the best is kept)")
    args = parser.parse_args(argv)
    loads = [float(x) for x in args.loads.split(",") if x.strip()]
    if 1.0 not in loads:
        loads.insert(0, 1.0)
    base = load_scenario(args.scenario)
    results = {k: measure(scaled(base, k), args.policy, args.repeat) for k in sorted(loads)}
    ref = results[1.0]
    print(f"{args.scenario} / {args.policy}, {base.duration:g} simulated s, best of {args.repeat}")
    print(f"{'load':>5} {'wall s':>8} {'events':>9} {'events/s':>10} {'x 1x':>6} {'peak MiB':>9} {'x 1x':>6}")
    for k, r in results.items():
        print(f"{k:>4g}x {r['wall_s']:8.2f} {r['events']:9d} {r['events_per_s']:10.0f} "
              f"{r['events_per_s'] / ref['events_per_s']:6.2f} {r['peak_mib']:9.1f} {r['peak_mib'] / ref['peak_mib']:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
