"""Operator groups (clustered by observed speed and concurrency) and shifts (from when each one worked).

Groups: operators with the same capacity (``operators.max_chats`` when the table has it, else
the most chats each was seen holding at once) whose median handle times are within a factor
of :data:`SPEED_SPLIT` of each other form one group — single-linkage clustering of the log of
the median handle time (``scipy.cluster.hierarchy``), so a floor of alike operators is one
group and a floor of seniors and juniors is two.  Each group's handle time is fitted on its
own observations (:mod:`chatlab.calibration.fits`).

Shifts: the tables record no log-ins, so an operator's online periods are its activity
(assignments, replies, hand-backs) split wherever it was silent for ``offline_gap`` seconds.
An operator active from the period's first to its last ``offline_gap`` is always on and gets
no shift; on a day- or week-shaped scenario each period is placed at its time of day (week).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chatlab.calibration.fits import DurationFit, fit_durations
from chatlab.calibration.samples import Samples

#: operators whose median handle times differ by less than this factor share a group
SPEED_SPLIT = 1.5
DEFAULT_OFFLINE_GAP = 1800.0


@dataclass(frozen=True)
class GroupFit:
    name: str
    operators: tuple[int, ...]  # the log's operator ids
    max_chats: int
    handle: DurationFit | None
    median_handle_s: float
    unassign_probability: float
    idle_probability: float
    shifts: tuple[tuple[int, float, float], ...] = field(default=())  # (index in group, start, end)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "operators": list(self.operators), "max_chats": self.max_chats,
                "median_handle_s": self.median_handle_s, "unassign_probability": self.unassign_probability,
                "idle_probability": self.idle_probability, "handle": self.handle.to_dict() if self.handle else None,
                "shifts": [list(s) for s in self.shifts]}


def online_periods(times: np.ndarray, gap: float) -> list[tuple[float, float]]:
    if not len(times):
        return []
    cuts = np.flatnonzero(np.diff(times) > gap)
    starts = np.concatenate(([times[0]], times[cuts + 1]))
    ends = np.concatenate((times[cuts], [times[-1]]))
    return [(float(a), float(b)) for a, b in zip(starts, ends)]


def fold(start: float, end: float, length: float, offset: float) -> list[tuple[float, float]]:
    """An online period of the history placed on the typical day (week) of ``length`` seconds:
    all of it if the period lasted that long, two pieces if it crossed midnight (the week's end)."""
    if end - start >= length:
        return [(0.0, length)]
    a, b = (start + offset) % length, (end + offset) % length
    return [(a, length), (0.0, b)] if b < a else [(a, b)]


def _capacity(op: int, samples: Samples, declared: dict[str, int]) -> int:
    return int(declared.get(str(op)) or samples.concurrency.get(op) or 1)


def cluster_operators(samples: Samples, operators: list[int], declared: dict[str, int]) -> list[list[int]]:
    """Operators in groups (see the module docstring), fastest group first."""
    from scipy.cluster.hierarchy import fcluster, linkage

    medians = samples.handle.groupby("operator_id")["handle_s"].median()
    by_cap: dict[int, list[int]] = {}
    for op in operators:
        by_cap.setdefault(_capacity(op, samples, declared), []).append(op)
    groups: list[list[int]] = []
    for cap in sorted(by_cap, reverse=True):
        members = by_cap[cap]
        known = [op for op in members if op in medians.index and medians[op] > 0]
        unknown = [op for op in members if op not in known]
        if len(known) >= 2:
            x = np.log(medians.loc[known].to_numpy(dtype=float)).reshape(-1, 1)
            labels = fcluster(linkage(x, method="single"), t=math.log(SPEED_SPLIT), criterion="distance")
            parts: dict[int, list[int]] = {}
            for op, label in zip(known, labels):
                parts.setdefault(int(label), []).append(op)
            found = sorted(parts.values(), key=lambda g: float(np.median(medians.loc[g])))
        else:
            found = [known] if known else []
        if unknown:  # never seen answering: with the largest group of their capacity
            if found:
                max(found, key=len).extend(unknown)
            else:
                found = [unknown]
        groups.extend(sorted(g) for g in found)
    return groups


def fit_groups(samples: Samples, operators: list[int], declared: dict[str, int], *, period_s: float,
               offline_gap: float = DEFAULT_OFFLINE_GAP, shape: str = "period", shape_length: float = 0.0,
               origin_offset: float = 0.0) -> list[GroupFit]:
    out: list[GroupFit] = []
    clusters = cluster_operators(samples, operators, declared)
    names = _names(clusters)
    for name, members in zip(names, clusters):
        handle = samples.handle[samples.handle["operator_id"].isin(members)]
        fit = fit_durations(f"handle time ({name})", handle["handle_s"].to_numpy())
        handled = sum(samples.handled.get(op, 0) for op in members)
        unassigns = sum(samples.unassigns.get(op, 0) for op in members)
        idles = sum(samples.idle_episodes.get(op, 0) for op in members)
        shifts: list[tuple[int, float, float]] = []
        for i, op in enumerate(members):
            periods = online_periods(samples.activity.get(op, np.array([])), offline_gap)
            if not periods or (len(periods) == 1 and periods[0][0] <= offline_gap
                               and periods[0][1] >= period_s - offline_gap):
                continue  # always on
            for a, b in periods:
                pieces = [(a, b)] if shape == "period" else fold(a, b, shape_length, origin_offset)
                shifts.extend((i, float(lo), float(max(hi, lo + 1.0))) for lo, hi in pieces)
        median = float(handle["handle_s"].median()) if len(handle) else math.nan
        out.append(GroupFit(name, tuple(members), max(_capacity(op, samples, declared) for op in members), fit, median,
                            unassigns / handled if handled else 0.0, idles / handled if handled else 0.0,
                            tuple(shifts)))
    return out


def _names(clusters: list[list[int]]) -> list[str]:
    if len(clusters) == 1:
        return ["floor"]
    return [f"group_{i + 1}" for i in range(len(clusters))]
