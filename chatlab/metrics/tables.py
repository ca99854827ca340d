"""Per-operator and per-hour tables of a run (``per_operator.csv``, ``per_hour.csv`` in a report)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from chatlab.metrics.episodes import (
    _overlap,
    assignments,
    idle_releases,
    online_intervals,
    queue_length_series,
    state_intervals,
    step_mean,
    wait_episodes,
)
from chatlab.metrics.floor import busy_seconds, operator_groups
from chatlab.metrics.runlog import (
    _AS,
    DEFAULT_SERVICE_LEVEL_T,
    chat_starts,
    in_window,
    operator_ids,
    prepare,
    run_duration,
    window_start,
)
from sim.statemachine import Event

PER_OPERATOR_COLUMNS = (
    "operator_id", "group", "online_s", "online_h", "assignments", "replies", "assignment_share", "reply_share",
    "assignments_per_online_hour", "replies_per_online_hour", "busy_s", "utilisation", "repeat_assignments",
    "premature_assignments", "assigned_s", "idle_releases", "idle_false_positives",
)


def add_shares_and_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Each operator's share of all assignments/replies, its counts per online hour and its
    utilisation (NaN when never online), from the ``assignments``, ``replies``, ``online_h`` and
    ``busy_s`` columns (in place)."""
    total_a, total_r = frame["assignments"].sum(), frame["replies"].sum()
    frame["assignment_share"] = frame["assignments"] / total_a if total_a else np.nan
    frame["reply_share"] = frame["replies"] / total_r if total_r else np.nan
    hours = frame["online_h"].where(frame["online_h"] > 0)
    frame["assignments_per_online_hour"] = frame["assignments"] / hours
    frame["replies_per_online_hour"] = frame["replies"] / hours
    frame["utilisation"] = frame["busy_s"] / frame["online_s"].where(frame["online_s"] > 0)
    return frame


def per_operator(log: pd.DataFrame) -> pd.DataFrame:
    """One row per operator (all operators of the run, even those who got nothing).

    Columns: see :data:`PER_OPERATOR_COLUMNS`; rates per online hour are NaN for an operator
    never online.  ``assigned_s`` is the chat-seconds its chats spent ``assigned`` to it.
    """
    log = prepare(log)
    ops = operator_ids(log)
    online = online_intervals(log)
    frame = pd.DataFrame({"operator_id": pd.array(ops, dtype="Int64")})
    groups = operator_groups(log.attrs, ops)
    frame["group"] = [groups[op] for op in ops]
    frame["online_s"] = [sum(b - a for a, b in online.get(op, [])) for op in ops]
    frame["online_h"] = frame["online_s"] / 3600.0
    asg = assignments(log)
    window = in_window(log)
    replies = window.loc[window["event"] == Event.OPERATOR_REPLY.value]

    def count(series: pd.Series) -> list[int]:
        counts = series.dropna().astype("int64").value_counts()
        return [int(counts.get(op, 0)) for op in ops]

    frame["assignments"] = count(asg["operator_id"])
    frame["replies"] = count(replies["operator_id"])
    iv = state_intervals(log)
    frame["busy_s"] = busy_seconds(iv, ops)
    add_shares_and_rates(frame)
    frame["repeat_assignments"] = count(asg.loc[asg["repeat"], "operator_id"])
    frame["premature_assignments"] = count(asg.loc[asg["premature"], "operator_id"])
    held = iv.loc[iv["state"] == _AS].dropna(subset=["operator_id"])
    held_s = (held["end"] - held["start"]).groupby(held["operator_id"].astype("int64")).sum()
    frame["assigned_s"] = [float(held_s.get(op, 0.0)) for op in ops]
    idle = idle_releases(log)
    frame["idle_releases"] = count(idle["operator_id"])
    frame["idle_false_positives"] = count(idle.loc[idle["false_positive"], "operator_id"])
    return frame.loc[:, list(PER_OPERATOR_COLUMNS)]


def per_hour(log: pd.DataFrame, *, service_level_t: float = DEFAULT_SERVICE_LEVEL_T) -> pd.DataFrame:
    """One row per hour of scenario time (hour 0 = [0, 3600) ...; the last hour holds ``duration``),
    from the hour holding the metrics window's start ``W`` (that hour starts at ``W``).

    Columns: hour, start_s, end_s, new_chats, assignments, replies, repeat_assignments,
    premature_assignments, abandoned, waits_started, waits_served, wait_mean_s, wait_p90_s,
    service_level_served_only (waits bucketed by the hour they started), queue_mean,
    operators_online_mean, assignments_per_operator_hour.
    """
    log = prepare(log)
    duration = run_duration(log)
    n_hours = max(1, math.ceil(duration / 3600.0)) if duration > 0 else 1
    first = window_start(log)

    def bucket(times: pd.Series | np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(times, dtype="float64") // 3600.0).astype("int64"), 0, n_hours - 1)

    def count(times: pd.Series | np.ndarray) -> np.ndarray:
        return np.bincount(bucket(times), minlength=n_hours)[:n_hours]

    asg = assignments(log)
    waits = wait_episodes(log)
    queue = queue_length_series(log)
    online = online_intervals(log)
    window = in_window(log)
    starts = chat_starts(log)
    new = starts[starts.to_numpy() >= first]
    abandoned = window.loc[(window["event"] == Event.END.value) & (window["reason"].astype(object) == "abandoned"), "time"]
    rows = []
    wait_bucket = bucket(waits["start"])
    first_hour = min(int(first // 3600.0), n_hours - 1)
    for h in range(n_hours):
        lo, hi = h * 3600.0, min((h + 1) * 3600.0, duration) if duration > 0 else (h + 1) * 3600.0
        lo = max(lo, first) if h == first_hour else lo
        w = waits.loc[wait_bucket == h]
        served = w.loc[w["outcome"] == "served", "wait_s"].to_numpy(dtype="float64")
        op_hours = sum(_overlap(iv, lo, hi) for iv in online.values()) / 3600.0
        rows.append({
            "hour": h, "start_s": lo, "end_s": hi,
            "waits_started": int(len(w)), "waits_served": int(len(served)),
            "wait_mean_s": float(served.mean()) if len(served) else np.nan,
            "wait_p90_s": float(np.percentile(served, 90)) if len(served) else np.nan,
            "service_level_served_only": float(np.mean(served <= service_level_t)) if len(served) else np.nan,
            "queue_mean": step_mean(queue["time"].to_numpy(), queue["queue_length"].to_numpy(), lo, hi),
            "operators_online_mean": op_hours / ((hi - lo) / 3600.0) if hi > lo else np.nan,
            "_op_hours": op_hours,
        })
    frame = pd.DataFrame(rows)
    frame.insert(3, "new_chats", count(new))
    frame.insert(4, "assignments", count(asg["time"]))
    frame.insert(5, "replies", count(window.loc[window["event"] == Event.OPERATOR_REPLY.value, "time"]))
    frame.insert(6, "repeat_assignments", count(asg.loc[asg["repeat"], "time"]))
    frame.insert(7, "premature_assignments", count(asg.loc[asg["premature"], "time"]))
    frame.insert(8, "abandoned", count(abandoned))
    frame["assignments_per_operator_hour"] = frame["assignments"] / frame["_op_hours"].where(frame["_op_hours"] > 0)
    return frame.loc[frame["hour"] >= first_hour].drop(columns="_op_hours").reset_index(drop=True)

