"""The arrival-rate curve of a history: new chats per hour of the period, of the day, or of the week.

Why three shapes: a history shorter than a day has no "typical day" (its hours are the
scenario's hours, from the period's start); a history of days has one (each hour of day
averaged over the days seen); a history of two weeks or more has a typical week.  The curve
is written as the scenario's ``kind = "curve"`` (piecewise linear through the middle of each
hour).  When a chi-square test cannot tell the hours apart (p >= 0.05: the counts are what a
constant Poisson rate gives), the simpler ``kind = "poisson"`` with the mean rate is written
instead and the test says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

HOUR = 3600.0
DAY = 24 * HOUR
WEEK = 7 * DAY
#: p-value at or above which the hours are taken to share one rate
CONSTANT_RATE_P = 0.05


@dataclass(frozen=True)
class ArrivalFit:
    shape: str  # "period" (hours from the start), "day" (hour of day, UTC), "week" (hour of week, UTC)
    duration: float  # the calibrated scenario's length (s)
    mean_rate: float  # chats per second over the whole period
    hourly: tuple[float, ...]  # chats per second in each hour of the shape
    chisquare_p: float | None  # are the hours alike?  None when there is one hour only
    chats: int
    period_s: float
    offset: float = 0.0  # day/week shapes: the period's start, in seconds into its day (week), UTC

    @property
    def length(self) -> float:
        """The shape's cycle (s): a day, a week, or the period itself."""
        return {"day": DAY, "week": WEEK}.get(self.shape, self.duration)

    @property
    def constant(self) -> bool:
        return self.chisquare_p is None or self.chisquare_p >= CONSTANT_RATE_P

    def table(self) -> dict[str, Any]:
        if self.constant:
            return {"kind": "poisson", "rate": _round(self.mean_rate)}
        points = [[(i + 0.5) * HOUR, _round(r)] for i, r in enumerate(self.hourly) if (i + 0.5) * HOUR < self.duration]
        return {"kind": "curve", "points": [[0.0, points[0][1]], *points, [self.duration, points[-1][1]]]}

    def summary(self) -> str:
        test = ("one hour only" if self.chisquare_p is None else
                f"chi-square of the {len(self.hourly)} hours p = {self.chisquare_p:.2g}")
        kind = "constant rate" if self.constant else f"curve by hour of {self.shape}"
        return (f"{self.chats} chats in {self.period_s / HOUR:.1f} h: {self.mean_rate:.4g} chats/s; {kind} ({test})")

    def to_dict(self) -> dict[str, Any]:
        return {"shape": self.shape, "duration": self.duration, "mean_rate": self.mean_rate,
                "hourly": list(self.hourly), "chisquare_p": self.chisquare_p, "chats": self.chats,
                "period_s": self.period_s, "constant": self.constant}


def _round(x: float) -> float:
    return float(f"{x:.4g}") if x else 0.0


def fit_arrivals(times: np.ndarray, period_s: float, origin: pd.Timestamp, time_scale: float = 1.0) -> ArrivalFit:
    """``times``: chat openings in scenario seconds since ``origin`` (the period's start)."""
    from scipy import stats

    times = np.asarray(times, dtype=float)
    offset = 0.0
    if period_s < DAY:
        shape = "period"
        # hours from the start; a last sliver under 6 minutes joins the hour before it
        bins = max(1, math.ceil(period_s / HOUR - 0.1))
        position = np.minimum(times, (bins - 1) * HOUR)
        exposure = np.full(bins, HOUR)
        exposure[-1] = period_s - (bins - 1) * HOUR
    else:
        shape, length = ("week", WEEK) if period_s >= 2 * WEEK else ("day", DAY)
        bins = int(length // HOUR)
        # hour of day/week on the wall clock (UTC): the origin's own offset into its day/week
        start = origin.tz_convert("UTC")
        offset = (start - start.normalize()).total_seconds() * time_scale
        if shape == "week":
            offset += start.day_of_week * DAY
        position = (times + offset) % length
        # how many seconds of each hour-of-shape the period covered, split at the clock's hours
        exposure = np.zeros(bins)
        t = 0.0
        while t < period_s:
            into = (t + offset) % HOUR
            stop = min(period_s, t + HOUR - into)
            exposure[int(((t + offset) % length) // HOUR) % bins] += stop - t
            t = stop
    counts = np.bincount(np.clip((position // HOUR).astype(int), 0, bins - 1), minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        hourly = np.where(exposure > 0, counts / exposure, 0.0)
    mean_rate = len(times) / period_s if period_s > 0 else 0.0
    p = None
    covered = exposure > 0
    if covered.sum() >= 2 and counts.sum() > 0:
        expected = exposure[covered] / exposure[covered].sum() * counts[covered].sum()
        p = float(stats.chisquare(counts[covered], expected).pvalue)
    duration = period_s if shape == "period" else length
    return ArrivalFit(shape, float(duration), float(mean_rate), tuple(float(h) for h in hourly), p, int(len(times)),
                      float(period_s), float(offset))
