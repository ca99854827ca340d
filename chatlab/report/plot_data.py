"""The numbers behind the figures that must choose what to draw (tested as data, not as pixels).

Why a module of its own: a figure that is readable for one run of six operators turns into a
"barcode" at seven policies over two hours, or into 500 bars at 500 operators.  What such a
figure shows — time bins instead of every step, a sorted curve instead of one bar per
operator — is decided here, so tests can check the choice and the values exactly, and
``plots.py`` only draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chatlab.metrics import Analysis, step_mean

#: bin widths a reader can add up (s): seconds, minutes, hours
NICE_WIDTHS_S = (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 7200, 10800,
                 21600, 43200, 86400)
#: how many time bins a run's queue plot aims at (the nice width nearest to span / this)
TARGET_BINS = 75
#: above this many operators the per-operator figures draw a sorted curve, not one bar each
MAX_BARS = 60


def bin_width(span: float, target: int = TARGET_BINS) -> float:
    """The nice width (:data:`NICE_WIDTHS_S`) giving the bin count nearest ``target`` (on a log
    scale) for ``span`` seconds: 7200 s -> 120 s (60 bins), 300 s -> 5 s (60 bins)."""
    if span <= 0:
        return 1.0
    return float(min(NICE_WIDTHS_S, key=lambda w: abs(np.log(span / w / target))))


def queue_bins(queue: pd.DataFrame, end: float, width: float | None = None) -> pd.DataFrame:
    """The queue-length step function (columns ``time``, ``queue_length``, from the window's start)
    summarised per time bin from its first time to ``end``: one row per bin with ``start``,
    ``end``, ``mean`` (time-weighted, :func:`chatlab.metrics.step_mean`) and ``max`` (the largest
    value in effect during the bin).  The last bin may be shorter; for a run pooled over seeds
    the series is the seeds' mean, so ``max`` is the largest mean, not any seed's maximum."""
    times = queue["time"].to_numpy(dtype="float64")
    values = queue["queue_length"].to_numpy(dtype="float64")
    begin = float(times[0]) if len(times) else 0.0
    if len(times) == 0 or end <= begin:
        return pd.DataFrame({"start": [], "end": [], "mean": [], "max": []}, dtype="float64")
    width = width or bin_width(end - begin)
    starts = begin + width * np.arange(int(np.ceil((end - begin) / width - 1e-9)))
    ends = np.minimum(starts + width, end)
    first = np.clip(np.searchsorted(times, starts, side="right") - 1, 0, None)  # in effect at the start
    last = np.searchsorted(times, ends, side="left")  # changes before the bin's end
    return pd.DataFrame({
        "start": starts, "end": ends,
        "mean": [step_mean(times, values, lo, hi) for lo, hi in zip(starts, ends)],
        "max": [values[i:max(j, i + 1)].max() for i, j in zip(first, last)],
    })


@dataclass(frozen=True)
class OperatorView:
    """What the per-operator assignments figure draws.

    ``kind`` is ``"bars"`` (one bar per operator id in ``x``, for up to :data:`MAX_BARS`
    operators) or ``"sorted"`` (``x`` is the rank 1..N, each run's counts sorted from most to
    fewest: a curve whose shape shows how evenly work is spread, readable at any floor size).
    ``counts`` maps each run's label to its values at ``x`` (operators absent from a run: 0).
    """

    kind: str
    x: np.ndarray
    counts: dict[str, np.ndarray]


def operator_view(runs: Sequence[Analysis], column: str = "assignments", max_bars: int = MAX_BARS) -> OperatorView:
    """Bars per operator for a small floor, a sorted curve for a large one (see :class:`OperatorView`)."""
    ops = sorted({int(o) for run in runs for o in run.per_operator["operator_id"]})
    counts = {run.label: run.per_operator.set_index("operator_id")[column].reindex(ops, fill_value=0)
              .to_numpy(dtype="float64") for run in runs}
    if len(ops) <= max_bars:
        return OperatorView("bars", np.asarray(ops), counts)
    return OperatorView("sorted", np.arange(1, len(ops) + 1),
                        {label: np.sort(c)[::-1] for label, c in counts.items()})
