"""The simulation at floor scale: `baseline` scaled to 500 operators, every policy, against bare SimPy.

The floor: `baseline` with 500 operators (3 chats each) and arrivals scaled to keep its load
(3.33 chats/s).  For each policy it simulates ``--simulate`` seconds (default 300: the slow
policies need minutes for more) and extrapolates to a day (86,400 s) — the table says which
figures are extrapolated.  Counted in the same run:

* the model's SimPy event rate (events the environment processed per wall second, counted
  by wrapping ``simpy.Environment.step``) against a bare SimPy M/M/c with ``simpy.Resource``
  (10 servers, 80 % load): the issue's target is a ratio of at least 0.5;
* the cost per simulated chat at 500 operators against 6 (the plain `baseline`), which is
  flat when the model scales.

    .venv/bin/python benchmarks/bench_floor.py [--simulate 300] [--policies exclude_last,round_robin]

Last line: ``floor-day max over policies: X s; model/bare SimPy event rate: R``; the line before
gives the same day in CPU seconds (on a machine shared with other jobs wall time mostly measures
them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.model import run_simulation  # noqa: E402
from sim.policies import POLICY_NAMES  # noqa: E402
from sim.scenario import load_scenario  # noqa: E402

DAY = 86_400.0
OPERATORS = 500


class Counting:
    """Count the events every SimPy environment processes while active (a class-level wrapper)."""

    def __enter__(self) -> Counting:
        self.events = 0
        self._step = simpy.Environment.step
        counter = self

        def step(env: simpy.Environment) -> None:
            counter.events += 1
            counter._step(env)

        simpy.Environment.step = step  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        simpy.Environment.step = self._step  # type: ignore[method-assign]


def bare_mmc(customers: int = 40_000, servers: int = 10, rho: float = 0.8, seed: int = 1) -> tuple[float, float, float]:
    """(customers per wall second, SimPy events per wall second, per CPU second) of a plain M/M/c in SimPy."""
    rng = np.random.default_rng(seed)
    mu = 1 / 60.0
    lam = rho * servers * mu
    env = simpy.Environment()
    desk = simpy.Resource(env, capacity=servers)
    done = [0]

    def customer() -> simpy.events.Event:
        with desk.request() as req:
            yield req
            yield env.timeout(rng.exponential(1 / mu))
        done[0] += 1

    def source() -> simpy.events.Event:
        for _ in range(customers):
            yield env.timeout(rng.exponential(1 / lam))
            env.process(customer())

    env.process(source())
    with Counting() as count:
        t0, c0 = time.perf_counter(), time.process_time()
        env.run()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return done[0] / wall, count.events / wall, count.events / cpu


def floor(base, operators: int):  # noqa: ANN001, ANN201
    k = operators / base.operators.count
    return base.with_overrides({"operators.count": operators, "users.arrivals.scale": k})


def timed(scenario, policy: str, seconds: float) -> dict[str, float]:  # noqa: ANN001
    sc = scenario.with_overrides({"duration": seconds})
    with Counting() as count:
        t0, c0 = time.perf_counter(), time.process_time()
        log = run_simulation(sc, policy, seed=1)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    chats = int(log["chat_id"].nunique())
    return {"wall_s": wall, "cpu_s": cpu, "rows": len(log), "simpy_events": count.events, "chats": chats,
            "per_chat_ms": 1000 * wall / max(1, chats)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simulate", type=float, default=300.0, help="simulated seconds per policy (extrapolated to a day)")
    ap.add_argument("--policies", default=",".join(POLICY_NAMES))
    args = ap.parse_args()
    base = load_scenario("baseline")
    big = floor(base, OPERATORS)
    customers_s, bare_events_s, bare_cpu_rate = bare_mmc()
    print(f"bare SimPy M/M/10: {customers_s:,.0f} customers/s, {bare_events_s:,.0f} events/s "
          f"({bare_cpu_rate:,.0f} per CPU second)")
    print(f"floor: {OPERATORS} operators, {big.rate_at(0):.2f} chats/s; {args.simulate:g} s simulated per policy, "
          f"a day extrapolated (x {DAY / args.simulate:g})")
    print(f"{'policy':<24}{'wall s':>9}{'day s (extr.)':>15}{'CPU day s':>11}{'rows':>9}{'SimPy ev/s':>12}"
          f"{'x bare':>8}{'ms/chat 500':>13}{'ms/chat 6':>11}{'ratio':>7}")
    worst_day, worst_cpu_day, rates = 0.0, 0.0, []
    for policy in [p for p in args.policies.split(",") if p]:
        r = timed(big, policy, args.simulate)
        small = timed(base, policy, max(args.simulate, 3600.0))
        day = r["wall_s"] * DAY / args.simulate
        cpu_day = r["cpu_s"] * DAY / args.simulate
        rate = r["simpy_events"] / r["wall_s"]
        rates.append(rate)
        worst_day, worst_cpu_day = max(worst_day, day), max(worst_cpu_day, cpu_day)
        print(f"{policy:<24}{r['wall_s']:9.2f}{day:15.0f}{cpu_day:11.0f}{r['rows']:9d}{rate:12,.0f}{rate / bare_events_s:8.2f}"
              f"{r['per_chat_ms']:13.3f}{small['per_chat_ms']:11.3f}{r['per_chat_ms'] / small['per_chat_ms']:7.1f}")
    # CPU seconds too: on a machine shared with other jobs wall time says more about them than about the model
    print(f"(CPU time: floor-day max over policies {worst_cpu_day:.0f} CPU s; bare SimPy "
          f"{bare_cpu_rate:,.0f} events per CPU s)")
    print(f"floor-day max over policies: {worst_day:.0f} s; model/bare SimPy event rate: "
          f"{min(rates) / bare_events_s:.2f} (slowest policy)")


if __name__ == "__main__":
    main()
