"""Sequential precision: add replications until every key metric's confidence interval is narrow enough.

As JMT does: a comparison starts with a few seeds and keeps adding a batch of new seeds
(the next integers, for every policy) until, for every policy, each key metric's 95 %
half-width is at most ``precision`` times its mean — or ``max_seeds`` is reached, which is
then said, with the metrics still too wide.  A metric whose mean is 0 (the fix's repeat rate)
or undefined has nothing to be precise about and is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chatlab.metrics import ci_half_width, get_metric

#: the metrics whose precision is demanded
PRECISION_KEYS: tuple[str, ...] = ("wait.mean_s", "wait.p90_s", "wait.service_level",
                                   "fairness.assignments_per_online_hour.jain", "fairness.utilisation.mean",
                                   "assignment.repeat_rate")
# (abandonment is a rare event: its relative interval shrinks too slowly to demand it)


@dataclass(frozen=True)
class Precision:
    seeds: tuple[int, ...]
    reached: bool
    worst: tuple[str, str, float] | None  # (policy, metric, relative half-width) of the widest interval

    def summary(self, precision: float) -> str:
        where = "" if self.worst is None else f"; widest: {self.worst[0]} {self.worst[1]} ±{100 * self.worst[2]:.1f} %"
        if self.reached:
            return f"precision ±{100 * precision:g} % reached with {len(self.seeds)} seeds{where}"
        return f"precision ±{100 * precision:g} % NOT reached with {len(self.seeds)} seeds (--max-seeds){where}"


def _value(metrics: dict[str, Any], key: str) -> float | None:
    try:
        v = get_metric(metrics, key)
    except KeyError:
        return None
    return None if v is None or isinstance(v, bool) else float(v)


def widest(runs: Sequence[Any], keys: Sequence[str] = PRECISION_KEYS) -> tuple[str, str, float] | None:
    """The (label, key, relative half-width) of the least precise metric over all labels."""
    by_label: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_label.setdefault(run.label, []).append(run.metrics)
    worst: tuple[str, str, float] | None = None
    for label, metrics in by_label.items():
        for key in keys:
            values = [v for v in (_value(m, key) for m in metrics) if v is not None]
            if len(values) < 2:
                return (label, key, float("inf"))
            mean = sum(values) / len(values)
            if mean == 0:
                continue
            rel = (ci_half_width(values) or 0.0) / abs(mean)
            if worst is None or rel > worst[2]:
                worst = (label, key, rel)
    return worst


def until_precise(run_batch: Callable[[list[int]], list[Any]], first: Sequence[int], *, precision: float,
                  max_seeds: int, batch: int) -> tuple[list[Any], Precision]:
    """Run ``first`` seeds, then batches of the next seeds, until :func:`widest` <= precision."""
    seeds = list(first)
    runs = run_batch(seeds)
    while True:
        worst = widest(runs)
        if worst is None or worst[2] <= precision:
            return runs, Precision(tuple(seeds), True, worst)
        if len(seeds) >= max_seeds:
            return runs, Precision(tuple(seeds), False, worst)
        nxt = list(range(max(seeds) + 1, max(seeds) + 1 + min(batch, max_seeds - len(seeds))))
        runs = runs + run_batch(nxt)
        seeds += nxt
