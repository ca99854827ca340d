"""The warm-up cut: which first seconds of a run every metric leaves out, and MSER-5 to choose them.

A simulated floor starts empty: no chat waiting, every operator free.  Its first minutes are
faster than the steady state it is meant to estimate, so a short run's mean wait is biased
low.  A run's cut is ``attrs["warmup"]`` (seconds; the metrics window is then
``[warmup, duration]``, see :func:`chatlab.metrics.runlog.window_start`) and
``attrs["warmup_method"]`` says where it came from; both travel with the saved log, so a
rebuilt report cuts the same.

**MSER-5** (White 1997; Franklin & White 2008): batch the run's output series in means of 5,
and cut the first ``d`` batches that minimise ``sum_{i>d} (b_i - mean(b_{d+1..n}))^2 /
(n - d)^2`` — the squared standard error of the mean of what is kept — over ``d < n/2``
(a minimum in the second half means the run is too short to tell, and nothing is cut).
The series here is the served waits in the order they started, the delay series MSER was
designed for; the cut in seconds is the start of the first wait kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from chatlab.metrics.runlog import prepare

#: MSER-5's batch size, and the fewest batches it needs before it chooses anything.
MSER_BATCH = 5
MSER_MIN_BATCHES = 10

#: What ``--warmup`` accepts besides a number of seconds.
AUTO = "auto"


def mser_cut(values: np.ndarray | list[float], batch: int = MSER_BATCH) -> int:
    """How many leading observations MSER-``batch`` cuts (a multiple of ``batch``; 0 when the
    series is too short, or when its minimum falls in the second half of the batches)."""
    y = np.asarray(values, dtype="float64")
    n = len(y) // batch
    if n < MSER_MIN_BATCHES:
        return 0
    means = y[: n * batch].reshape(n, batch).mean(axis=1)
    tail_sum = np.cumsum(means[::-1])[::-1]  # sum of means[d:]
    tail_sq = np.cumsum((means ** 2)[::-1])[::-1]
    kept = np.arange(n, 0, -1, dtype="float64")  # n - d
    # sum (b - mean)^2 = sum b^2 - (sum b)^2 / k, divided by k^2
    stat = (tail_sq - tail_sum ** 2 / kept) / kept ** 2
    d = int(np.argmin(stat[: n - MSER_MIN_BATCHES // 2]))  # the last few batches alone are no estimate
    return d * batch if d <= n // 2 else 0


def mser5_warmup(log: pd.DataFrame) -> float:
    """The warm-up MSER-5 chooses for this run (scenario seconds), from its whole log."""
    from chatlab.metrics.episodes import wait_episodes

    log = prepare(log)
    whole = log.copy(deep=False)
    whole.attrs = {**log.attrs, "warmup": 0.0}
    waits = wait_episodes(whole)
    served = waits.loc[waits["outcome"] == "served"].sort_values(["start", "chat_id"], kind="stable")
    cut = mser_cut(served["wait_s"].to_numpy(dtype="float64"))
    return float(served["start"].iloc[cut]) if cut else 0.0


def resolve_warmup(log: pd.DataFrame) -> pd.DataFrame:
    """The log with its warm-up cut resolved to seconds: ``attrs["warmup"] = "auto"`` becomes MSER-5's
    choice (``warmup_method = "mser5"``), a positive number is kept (``"fixed"``); the same
    frame when there is nothing to resolve (no cut, or resolved already)."""
    log = prepare(log)
    value = log.attrs.get("warmup")
    if value == AUTO:
        seconds, method = mser5_warmup(log), "mser5"
    elif log.attrs.get("warmup_method") is None and isinstance(value, (int, float)) and value > 0:
        seconds, method = float(value), "fixed"
    else:
        return log
    out = log.copy(deep=False)
    out.attrs = {**log.attrs, "warmup": seconds, "warmup_method": method}
    return out
