"""How many operators per interval meet a service level: Erlang A as the start, the simulation as the judge.

For each interval (``--interval``, default an hour) the offered load is the interval's mean
arrival rate times the mean exchanges per chat (every user message waits for an operator
again) times the mean handle time; Erlang C — Erlang A (:class:`sim.erlang.MMcM`) when users
give up, with rate 1 / mean patience — gives the fewest operators whose service level
``P(assigned within T)`` meets the target (and whose abandonment stays under the bound).
That treats every operator as one server of messages.  The lab's floor is not quite that
(an operator holds up to ``max_chats`` chats and is assigned while busy, clients poll, users
think), so the plan is then simulated — operators on shift only in the intervals that need
them — and corrected: an interval that misses the target gets one more operator, then every
interval is tried with one fewer and keeps it if the target still holds, until nothing
changes (at most ``MAX_ROUNDS`` rounds).  Each simulation is ``seeds`` replications (on
every core, :mod:`chatlab.replications`) and is judged on their mean.

Per-interval service level and abandonment use the metrics' definitions (waits that start
in the interval; chats opened in it).  Floors of several operator groups are not planned
(one line, exit 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chatlab.metrics import wait_episodes
from chatlab.replications import Replication, run_replications
from sim.erlang import MMc, MMcM, QueueingError
from sim.errors import ChatLabError

MAX_ROUNDS = 8
MAX_STAFF = 2000


class StaffingError(ChatLabError):
    """A scenario or target the staffing plan cannot handle."""


@dataclass
class Interval:
    start: float
    end: float
    arrival_rate: float  # chats/s
    offered_load: float  # Erlangs of operator work
    erlang_staff: int
    erlang_sl: float
    erlang_abandonment: float
    staff: int = 0  # after the simulation's corrections
    sim_sl: float | None = None
    sim_abandonment: float | None = None
    waits: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class StaffPlan:
    scenario: str
    target_sl: float
    within: float
    max_abandonment: float | None
    seeds: tuple[int, ...]
    intervals: list[Interval]
    rounds: int
    met: bool
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "target_sl": self.target_sl, "within": self.within,
                "max_abandonment": self.max_abandonment, "seeds": list(self.seeds), "rounds": self.rounds,
                "met": self.met, "notes": self.notes, "intervals": [i.to_dict() for i in self.intervals]}


def erlang_staff(lam: float, mu: float, theta: float, target_sl: float, within: float,
                 max_abandonment: float | None) -> tuple[int, float, float]:
    """The fewest servers meeting the target: (c, its service level, its abandonment)."""
    if lam <= 0:
        return 0, 1.0, 0.0
    c = max(1, math.floor(lam / mu) + (1 if theta == 0 else 0))
    while c <= MAX_STAFF:
        try:
            q = MMcM(lam, mu, c, theta) if theta > 0 else MMc(lam, mu, c)
        except QueueingError:  # Erlang C unstable at this c
            c += 1
            continue
        sl = q.service_level(within)
        ab = q.p_abandon if theta > 0 else 0.0
        if sl >= target_sl and (max_abandonment is None or ab <= max_abandonment):
            return c, sl, ab
        c += 1
    raise StaffingError(f"no staff up to {MAX_STAFF} meets service level {target_sl:g} within {within:g} s")


def _rate(scenario: Any, lo: float, hi: float) -> float:
    ts = np.linspace(lo, hi, 61)
    return float(np.mean([scenario.rate_at(float(t)) for t in ts]))


def check_floor(scenario: Any) -> None:
    ops = scenario.operators
    if ops.group_specs:
        raise StaffingError(f"scenario {scenario.name!r} has [[operators.groups]]; chatlab staff plans one kind of "
                            "operator (the flat operators.count form) for now")
    if scenario.users.arrivals.kind == "trace":
        raise StaffingError(f"scenario {scenario.name!r}: staffing needs an arrival rate (poisson or curve), "
                            "not a trace")


def erlang_plan(scenario: Any, *, target_sl: float, within: float, interval: float,
                max_abandonment: float | None) -> list[Interval]:
    check_floor(scenario)
    users, ops = scenario.users, scenario.operators
    exchanges = max(1.0, users.exchanges.mean)
    mu = 1.0 / ops.group_of(0).handle_time.mean
    patience = users.patience.mean
    theta = 0.0 if not math.isfinite(patience) or patience <= 0 else 1.0 / patience
    out = []
    starts = np.arange(0.0, scenario.duration, interval)
    for lo in starts:
        hi = min(scenario.duration, lo + interval)
        rate = _rate(scenario, lo, hi)
        lam = rate * exchanges
        c, sl, ab = erlang_staff(lam, mu, theta, target_sl, within, max_abandonment)
        out.append(Interval(float(lo), float(hi), rate, lam / mu, c, sl, ab, staff=max(1, c)))
    return out


def staffed(scenario: Any, staff: Sequence[int], intervals: Sequence[Interval]) -> Any:
    """The scenario with operator i on shift only in the intervals that need more than i operators."""
    top = max(staff)
    shifts = []
    for i in range(top):
        run: list[float] | None = None
        for k, iv in enumerate(intervals):
            on = staff[k] > i
            if on and run is None:
                run = [iv.start, iv.end]
            elif on:
                run[1] = iv.end
            elif run is not None:
                shifts.append({"start": run[0], "end": run[1], "operators": [i]})
                run = None
        if run is not None:
            shifts.append({"start": run[0], "end": run[1], "operators": [i]})
    return scenario.with_overrides({"operators.count": top, "operators.shifts": shifts})


def measure(logs: Sequence[Any], intervals: Sequence[Interval], within: float) -> list[tuple[float | None, float, int]]:
    """Per interval over all logs: (service level, abandonment, waits)."""
    out = []
    parts = []
    for log in logs:
        waits = wait_episodes(log)
        firsts = log[log["chat_id"].notna()].groupby("chat_id", sort=False)["time"].min()
        ends = log[(log["event"] == "end") & (log["reason"].astype(str) == "abandoned")]
        parts.append((waits, firsts, set(ends["chat_id"].dropna().astype(int))))
    for iv in intervals:
        good = known = opened = gave_up = 0
        for waits, firsts, abandoned in parts:
            w = waits[(waits["start"] >= iv.start) & (waits["start"] < iv.end)]
            served = w["outcome"] == "served"
            good += int((served & (w["wait_s"] <= within)).sum())
            known += int((served | (w["outcome"] == "ended") | (w["wait_s"] > within)).sum())
            mine = firsts[(firsts >= iv.start) & (firsts < iv.end)]
            opened += len(mine)
            gave_up += sum(1 for c in mine.index if int(c) in abandoned)
        out.append((good / known if known else None, gave_up / opened if opened else 0.0, known))
    return out


def _meets(sl: float | None, ab: float, target: float, max_ab: float | None) -> bool:
    return (sl is None or sl >= target) and (max_ab is None or ab <= max_ab)


def plan_staff(scenario: Any, *, target_sl: float, within: float, interval: float = 3600.0,
               max_abandonment: float | None = None, seeds: Sequence[int] = (1, 2, 3), jobs: int | None = None,
               dask: str | None = None, on_round: Callable[[int, str], None] | None = None) -> StaffPlan:
    """Erlang A per interval, then simulated and corrected (see the module docstring)."""
    intervals = erlang_plan(scenario, target_sl=target_sl, within=within, interval=interval,
                            max_abandonment=max_abandonment)

    def simulate(staff: list[int]) -> list[tuple[float | None, float, int]]:
        sc = staffed(scenario, staff, intervals)
        reps = [Replication(sc, None, s, "staff") for s in seeds]
        runs = run_replications(reps, jobs=jobs, dask=dask)
        return measure([r.log for r in runs], intervals, within)

    staff = [iv.staff for iv in intervals]
    result = simulate(staff)
    rounds, met = 1, False
    while rounds < MAX_ROUNDS:
        failing = [k for k, (sl, ab, _) in enumerate(result) if not _meets(sl, ab, target_sl, max_abandonment)]
        if failing:  # up where the target is missed
            for k in failing:
                staff[k] += 1
            if on_round:
                on_round(rounds, f"+1 operator in {len(failing)} interval(s)")
            result, rounds = simulate(staff), rounds + 1
            continue
        # down where one fewer may still do: try all at once, keep the ones that still meet the target
        trial = [max(1, s - 1) for s in staff]
        if trial == staff:
            met = True
            break
        tried = simulate(trial)
        rounds += 1
        keep = [k for k, (sl, ab, _) in enumerate(tried) if trial[k] < staff[k]
                and _meets(sl, ab, target_sl, max_abandonment)]
        if not keep:
            met = True
            break
        for k in keep:
            staff[k] = trial[k]
        if on_round:
            on_round(rounds, f"-1 operator in {len(keep)} interval(s)")
        result, rounds = simulate(staff), rounds + 1
    else:
        met = all(_meets(sl, ab, target_sl, max_abandonment) for sl, ab, _ in result)
    for iv, s, (sl, ab, n) in zip(intervals, staff, result):
        iv.staff, iv.sim_sl, iv.sim_abandonment, iv.waits = s, sl, ab, n
    notes = ["Erlang treats each operator as one server of messages (offered load = chats/s x mean exchanges x "
             "mean handle time); the simulation plays the floor as it is (max_chats, polling, users thinking)"]
    if not met:
        notes.append(f"the plan did not settle within {MAX_ROUNDS} simulation rounds; the last one is shown")
    return StaffPlan(scenario.name, target_sl, within, max_abandonment, tuple(seeds), intervals, rounds, met, notes)
