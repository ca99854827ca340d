"""Several seeds of one policy shown as one column: means with confidence intervals, pooled tables.

Why: one seed of a stochastic simulation is one sample; ``chatlab compare --seeds 1-5``
runs every policy on every seed and the reader wants one column per policy.  Every run is
still analysed (and saved) on its own; this module only combines finished analyses:

* ``metrics``: the mean over seeds of every numeric leaf (same nested layout as
  :func:`chatlab.metrics.compute_metrics`, so every documented key still exists); a
  non-numeric leaf keeps its value when all seeds agree, else ``None`` (``run.seed`` is
  ``None``; the seeds are in :attr:`Analysis.seeds`).  ``None`` values (e.g. no p99 in a
  seed) are left out of the mean; all-``None`` stays ``None``.
* ``spread``: the population std over seeds of the same leaves (``None`` if not numeric).
* ``interval``: the half-width of the 95 % confidence interval of each mean, Student t:
  ``t(0.975, n - 1) * s / sqrt(n)`` with ``s`` the sample std (``ddof = 1``) of the n seeds
  that have a value (``None`` below two).
* ``per_operator``: counts and online time summed over seeds, shares and per-hour rates
  recomputed from the sums (so the Lorenz curve is that of the pooled counts).
* ``waits``: all seeds' waits together (the CDF of the pooled sample).
* ``state_counts``: the mean over seeds of the chats-per-state step functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from chatlab.metrics.analysis import Analysis
from chatlab.metrics.runlog import ALL_STATES
from chatlab.metrics.tables import add_shares_and_rates


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _combine(values: Sequence[Any], how: str) -> Any:
    """Mean or std of one leaf over seeds (dicts recurse)."""
    first = values[0]
    if isinstance(first, dict):
        keys = list(first)
        return {k: _combine([v.get(k) if isinstance(v, dict) else None for v in values], how) for k in keys}
    numbers = [float(v) for v in values if _is_number(v) and math.isfinite(float(v))]
    if numbers and all(v is None or _is_number(v) for v in values):
        arr = np.asarray(numbers)
        if how == "ci":
            return ci_half_width(arr)
        return float(arr.mean()) if how == "mean" else float(arr.std(ddof=0))
    if how in ("std", "ci"):
        return None
    return first if all(v == first for v in values) else None


#: the confidence level of every interval the lab reports
CONFIDENCE = 0.95


def ci_half_width(values: Any, confidence: float = CONFIDENCE) -> float | None:
    """Half-width of the Student-t confidence interval of the mean of ``values`` (None below 2)."""
    from scipy import stats

    arr = np.asarray(values, dtype=float)
    if arr.size < 2:
        return None
    sd = float(arr.std(ddof=1))
    return float(stats.t.ppf(0.5 + confidence / 2, arr.size - 1) * sd / math.sqrt(arr.size))


def ci_metrics(metrics: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The 95 % confidence half-width of every numeric metric's mean over seeds (``None`` elsewhere)."""
    return _combine(list(metrics), "ci")


def mean_metrics(metrics: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The mean over seeds of every numeric metric (layout unchanged); ``run.seed`` is ``None``."""
    out = _combine(list(metrics), "mean")
    out["schema_version"] = metrics[0]["schema_version"]
    out["run"]["seed"] = None
    return out


def std_metrics(metrics: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The population std over seeds of every numeric metric (``None`` elsewhere)."""
    return _combine(list(metrics), "std")


_SUMMED = ("online_s", "online_h", "assignments", "replies", "busy_s", "repeat_assignments", "premature_assignments",
           "assigned_s", "idle_releases", "idle_false_positives")


def pooled_per_operator(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Per-operator counts summed over seeds; shares and per-online-hour rates recomputed."""
    cols = list(tables[0].columns)
    both = pd.concat(tables, ignore_index=True)
    grouped = both.groupby("operator_id", sort=True)
    summed = grouped[list(_SUMMED)].sum()
    summed.insert(0, "group", grouped["group"].first())
    return add_shares_and_rates(summed.reset_index()).loc[:, cols]


def mean_state_counts(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The mean over seeds of right-continuous step functions sampled at every change time."""
    times = np.unique(np.concatenate([t["time"].to_numpy(dtype="float64") for t in tables]))
    out = pd.DataFrame({"time": times})
    for state in ALL_STATES:
        acc = np.zeros(len(times))
        for t in tables:
            idx = np.searchsorted(t["time"].to_numpy(dtype="float64"), times, side="right") - 1
            values = t[state].to_numpy(dtype="float64")
            acc += np.where(idx >= 0, values[np.clip(idx, 0, None)], 0.0)
        out[state] = acc / len(tables)
    return out


def pool(label: str, runs: Sequence[Analysis]) -> Analysis:
    """One :class:`Analysis` standing for several seeds of the same policy (see module doc)."""
    if not runs:
        raise ValueError("nothing to pool")
    if len(runs) == 1:
        return runs[0]
    metrics = [r.metrics for r in runs]
    per_hour = pd.concat([r.per_hour for r in runs]).groupby("hour", sort=True).mean(numeric_only=True).reset_index()
    return Analysis(
        label=label,
        log=runs[0].log,
        metrics=mean_metrics(metrics),
        per_operator=pooled_per_operator([r.per_operator for r in runs]),
        per_hour=per_hour,
        waits=pd.concat([r.waits for r in runs], ignore_index=True),
        state_counts=mean_state_counts([r.state_counts for r in runs]),
        spread=std_metrics(metrics),
        interval=ci_metrics(metrics),
        seeds=tuple(int(r.metrics["run"]["seed"]) if r.metrics["run"]["seed"] is not None else -1 for r in runs),
    )
