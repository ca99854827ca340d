"""From a history (the seed's four tables) to a scenario of that floor, with every fit's quality.

The steps, each in its own module: the period's rows -> the event log
(:mod:`chatlab.db.seedlog`) -> observations (:mod:`.samples`) -> the arrival curve
(:mod:`.arrivals`), duration fits (:mod:`.fits`), groups and shifts (:mod:`.floor`) -> a
commented scenario file (:mod:`.scenario_file`), parsed back to be sure it is valid.  What
the tables cannot say (idle durations, job thresholds, the policy) keeps the lab's defaults,
and the file says so where it does.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from chatlab.calibration.arrivals import ArrivalFit, fit_arrivals
from chatlab.calibration.fits import CountFit, DurationFit, fit_counts, fit_durations
from chatlab.calibration.floor import DEFAULT_OFFLINE_GAP, GroupFit, fit_groups
from chatlab.calibration.samples import Samples, collect
from chatlab.calibration.scenario_file import ScenarioText
from chatlab.db.seedlog import period_of, select_period, to_event_log
from chatlab.db.seedtables import SeedTables
from sim.errors import ChatLabError
from sim.scenario import Scenario, parse_scenario


class CalibrationError(ChatLabError):
    """A history that cannot be calibrated (an empty period, a bad option)."""


@dataclass(frozen=True)
class Calibration:
    text: str  # the scenario file
    scenario: Scenario
    observed: pd.DataFrame  # the period's event log (what the report measures)
    arrivals: ArrivalFit
    think: DurationFit | None
    patience: DurationFit | None
    exchanges: CountFit | None
    handle: DurationFit | None  # the whole floor's
    groups: tuple[GroupFit, ...]
    since: pd.Timestamp
    until: pd.Timestamp
    time_scale: float
    source: str
    returning: float | None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        def fit(f: Any) -> Any:
            return None if f is None else f.to_dict()

        return {"source": self.source, "since": self.since.isoformat(), "until": self.until.isoformat(),
                "time_scale": self.time_scale, "arrivals": self.arrivals.to_dict(), "think_time": fit(self.think),
                "patience": fit(self.patience), "exchanges": fit(self.exchanges), "handle_time": fit(self.handle),
                "groups": [g.to_dict() for g in self.groups], "returning": self.returning,
                "dropped_rows": int(self.observed.attrs.get("dropped_rows", 0)), "notes": list(self.notes)}


def _stamp(value: str | None, option: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise CalibrationError(f"{option}: expected a timestamp such as 2026-03-01 or 2026-03-01T08:00:00Z, "
                               f"got {value!r}") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def calibrate(tables: SeedTables, *, since: str | None = None, until: str | None = None, time_scale: float = 1.0,
              offline_gap: float = DEFAULT_OFFLINE_GAP, name: str = "calibrated", seed: int = 1) -> Calibration:
    if not (time_scale > 0 and math.isfinite(time_scale)):
        raise CalibrationError(f"--time-scale: expected a number > 0, got {time_scale!r}")
    if not (offline_gap > 0 and math.isfinite(offline_gap)):
        raise CalibrationError(f"--offline-gap: expected seconds > 0, got {offline_gap!r}")
    lo, hi = _stamp(since, "--since"), _stamp(until, "--until")
    if lo is not None and hi is not None and hi <= lo:
        raise CalibrationError(f"--until ({hi}) must be after --since ({lo})")
    chosen = select_period(tables, lo, hi)
    if chosen.chats.empty:
        window = f"{lo or 'the start'} .. {hi or 'the end'}"
        raise CalibrationError(f"{tables.source}: no chats opened in the period {window}; nothing to calibrate")
    first, last = period_of(chosen)
    origin = lo if lo is not None else first
    end = hi if hi is not None else last
    period_s = (end - origin).total_seconds() * time_scale
    if not period_s > 0:
        raise CalibrationError(f"{tables.source}: the period {origin} .. {end} is empty")
    log = to_event_log(chosen, origin=origin, time_scale=time_scale, duration=period_s)
    samples = collect(log)
    arrivals = fit_arrivals(samples.arrivals, period_s, origin, time_scale)
    think = fit_durations("think time", samples.think)
    patience = fit_durations("patience", samples.patience, samples.patience_censored)
    exchanges = fit_counts("exchanges", samples.exchanges)
    handle = fit_durations("handle time", samples.handle["handle_s"].to_numpy())
    operators = sorted(int(o) for o in log.attrs["operators"]
                       if o in samples.activity or str(o) in log.attrs.get("operator_max_chats", {}))
    active = [o for o in operators if o in samples.activity]
    if not active:
        raise CalibrationError(f"{tables.source}: no operator took a chat in the period; nothing to calibrate")
    declared = log.attrs.get("operator_max_chats", {})
    # the scenario has the operators who worked in the period; so must the observed side's fairness
    log.attrs["operators"] = active
    groups = fit_groups(samples, active, declared, period_s=period_s, offline_gap=offline_gap, shape=arrivals.shape,
                        shape_length=arrivals.length, origin_offset=arrivals.offset)
    notes = []
    if log.attrs.get("dropped_rows"):
        notes.append(f"{log.attrs['dropped_rows']} history rows did not fit the state machine and were left out")
    text = _write(name, seed, tables.source, origin, end, time_scale, arrivals, think, patience, exchanges, handle,
                  groups, samples, offline_gap)
    scenario = parse_scenario(tomllib.loads(text), source=f"calibrated from {tables.source}")
    return Calibration(text, scenario, log, arrivals, think, patience, exchanges, handle, tuple(groups), origin, end,
                       float(time_scale), tables.source, samples.returning_share, tuple(notes))


def _dist(fit: DurationFit | None, default: dict[str, Any]) -> tuple[dict[str, Any], str]:
    if fit is None:
        return default, "too few observations to fit: the lab's default"
    return fit.distribution(), fit.summary()


def _write(name: str, seed: int, source: str, origin: pd.Timestamp, end: pd.Timestamp, time_scale: float,
           arrivals: ArrivalFit, think: DurationFit | None, patience: DurationFit | None, exchanges: CountFit | None,
           handle: DurationFit | None, groups: list[GroupFit], samples: Samples, offline_gap: float) -> str:
    out = ScenarioText()
    scale = f", timestamps x {time_scale:g} (recorded at time scale {time_scale:g})" if time_scale != 1 else ""
    out.comment(f"Calibrated by `chatlab calibrate` from {source}\n"
                f"period {origin.isoformat()} .. {end.isoformat()} ({arrivals.period_s / 3600:.2f} h of scenario time"
                f"{scale}).\nEach value's comment says which fit it came from and how well it fits; values the "
                "tables cannot tell\nkeep the lab's defaults and say so.")
    out.key("name", name)
    ops = sum(len(g.operators) for g in groups)
    out.multiline("description", f"Calibrated from {source}: {arrivals.chats} chats, {ops} operators in "
                                 f"{len(groups)} group(s), {origin.isoformat()} .. {end.isoformat()}.")
    out.key("duration", float(round(arrivals.duration, 3)),
            "one typical day (hour of day, UTC)" if arrivals.shape == "day" else
            "one typical week (hour of week, UTC)" if arrivals.shape == "week" else "the period's length")
    out.key("seed", seed)
    out.table("users")
    d, why = _dist(think, {"dist": "exponential", "mean": 30.0})
    out.key("think_time", d, f"think time (operator reply -> next user message): {why}")
    if exchanges is None:
        out.key("exchanges", 3, "exchanges: too few resolved chats to count: the lab's default")
    else:
        out.key("exchanges", exchanges.distribution(), f"exchanges (operator replies per resolved chat): "
                                                        f"{exchanges.summary()}")
    if patience is None:
        out.comment("patience: too few chats ended while queued to fit: users never give up (the lab's default)")
    else:
        out.key("patience", patience.distribution(), f"patience (chats closed while queued; served waits "
                                                     f"right-censored): {patience.summary()}")
    if samples.returning_share is not None:
        out.key("returning", round(samples.returning_share, 4), f"share of new chats from a user seen before "
                                                         f"({samples.users} users)")
    out.table("users.arrivals", f"arrivals: {arrivals.summary()}")
    for k, v in arrivals.table().items():
        out.key(k, v)
    out.table("operators", "the floor's defaults; each group below has its own fit")
    d, why = _dist(handle, {"dist": "exponential", "mean": 60.0})
    out.key("handle_time", d, f"handle time, whole floor: {why}")
    out.key("idle_duration", {"dist": "exponential", "mean": 600.0},
            "idle duration: not in the tables (no log-ins recorded): the lab's default")
    for g in groups:
        out.array_table("operators.groups")
        out.comment(f"{len(g.operators)} operator(s) (history ids {_ids(g.operators)}); median handle "
                    f"{g.median_handle_s:.1f} s")
        out.key("name", g.name)
        out.key("count", len(g.operators))
        out.key("max_chats", int(g.max_chats))
        d, why = _dist(g.handle, handle.distribution() if handle else {"dist": "exponential", "mean": 60.0})
        out.key("handle_time", d, f"handle time: {why}")
        out.key("unassign_probability", round(g.unassign_probability, 5), "hand-backs per handled message")
        out.key("idle_probability", round(g.idle_probability, 5), "idle episodes (idle releases) per handled message")
        for i, start, stop in g.shifts:
            out.array_table("operators.groups.shifts")
            out.comment(f"online from its activity (silent > {offline_gap:g} s = offline)")
            out.key("start", round(start, 3))
            out.key("end", round(stop, 3))
            out.key("operators", [i])
    out.table("policy", "the policy to compare others against: the seed's fix (the tables do not say which ran)")
    out.key("name", "exclude_last")
    out.key("mode", "pull")
    out.key("poll_interval", 5.0)
    out.table("jobs", "the housekeeping jobs: the lab's defaults (their settings are not in the tables)")
    out.key("idle_detection_interval", 60.0)
    out.key("idle_after", 300.0)
    out.key("stuck_check_interval", 300.0)
    out.key("stuck_after", 1800.0)
    return out.text()


def _ids(ops: tuple[int, ...]) -> str:
    shown = ", ".join(str(o) for o in ops[:8])
    return shown + (f", ... ({len(ops)})" if len(ops) > 8 else "")
