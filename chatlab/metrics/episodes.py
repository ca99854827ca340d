"""Episodes of a run: online intervals, assignments, waits, state stays, queue length, idle releases.

Each function turns the event log into one table of episodes (see the definitions in the
package docstring and ``docs/semantics.md``, "Metrics"); the summary numbers
(``chatlab.metrics.analysis``) and the per-operator/per-hour tables are built from these.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from chatlab.metrics.runlog import (
    _WA,
    _WR,
    ALL_STATES,
    DEFAULT_SERVICE_LEVEL_T,
    OPEN_STATES,
    _col,
    _num,
    _rate,
    derived,
    operator_ids,
    prepare,
    run_duration,
    window_start,
)
from sim.eventlog import OperatorEvent
from sim.statemachine import Event, State


@derived
def online_intervals(log: pd.DataFrame) -> dict[int, list[tuple[float, float]]]:
    """Each operator's online intervals within the metrics window ``[W, duration]`` (see module docstring)."""
    log = prepare(log)
    duration = run_duration(log)
    start = window_start(log)
    ops = operator_ids(log)
    mask = log["event"].isin([OperatorEvent.ONLINE.value, OperatorEvent.OFFLINE.value]) & log["operator_id"].notna()
    rows = log.loc[mask, ["time", "operator_id", "event"]]
    by_op: dict[int, list[tuple[float, str]]] = {}
    for t, op, ev in zip(rows["time"].to_numpy(), _col(rows, "operator_id"), _col(rows, "event")):
        by_op.setdefault(int(op), []).append((float(t), ev))
    result: dict[int, list[tuple[float, float]]] = {}
    presence = bool(by_op)  # the log says who logs in and out: an operator it never names never was online
    for op in ops:
        events = by_op.get(op)
        if not events:
            result[op] = [(0.0, duration)] if duration > 0 and not presence else []
            continue
        intervals: list[tuple[float, float]] = []
        online_since: float | None = 0.0 if events[0][1] == OperatorEvent.OFFLINE.value else None
        for t, ev in events:
            if ev == OperatorEvent.ONLINE.value and online_since is None:
                online_since = t
            elif ev == OperatorEvent.OFFLINE.value and online_since is not None:
                intervals.append((online_since, t))
                online_since = None
        if online_since is not None:
            intervals.append((online_since, max(duration, online_since)))
        result[op] = [(max(a, start), b) for a, b in intervals if b > max(a, start)]
    return result


def _online_at(intervals: list[tuple[float, float]], t: float) -> bool:
    return any(a <= t <= b for a, b in intervals)


def _overlap(intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    return sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in intervals)


# --------------------------------------------------------------------------- assignments


@derived
def assignments(log: pd.DataFrame) -> pd.DataFrame:
    """One row per ``assign``: time, chat_id, operator_id, from_state, previous_operator_id,
    ``repeat`` (same operator as the chat's previous assign) and ``premature`` (assigned from
    ``waiting_real_user_reply``); those in the metrics window (``t >= W``; a repeat still looks
    back before it)."""
    log = prepare(log)
    rows = log.loc[log["event"] == Event.ASSIGN.value, ["time", "chat_id", "operator_id", "from_state"]].copy()
    rows["previous_operator_id"] = rows.groupby("chat_id", dropna=False)["operator_id"].shift()
    rows["previous_operator_id"] = rows["previous_operator_id"].astype("Int64")
    same = rows["operator_id"] == rows["previous_operator_id"]
    rows["repeat"] = same.fillna(False).astype(bool)
    rows["premature"] = (rows["from_state"] == _WR).fillna(False).astype(bool)
    rows = rows.loc[rows["time"].to_numpy() >= window_start(log)]
    return rows.reset_index(drop=True)


# --------------------------------------------------------------------------- waits


WAIT_COLUMNS = ("chat_id", "start", "end", "wait_s", "outcome", "operator_id", "end_reason")


@derived
def wait_episodes(log: pd.DataFrame) -> pd.DataFrame:
    """One row per wait for assignment (see module docstring).

    ``outcome`` is ``served`` (ended by an assign; ``operator_id`` is the assignee),
    ``ended`` (the chat was closed while queued; ``end_reason`` e.g. ``abandoned``) or
    ``open`` (still waiting at ``duration``).  ``wait_s`` is the (possibly censored) length.
    Only waits that start in the metrics window (``start >= W``) count: one begun during the
    warm-up belongs to it.
    """
    log = prepare(log)
    duration = run_duration(log)
    to_s, from_s = log["to_state"], log["from_state"]
    starts = (to_s == _WA).fillna(False) & ~(from_s == _WA).fillna(False)
    leaves = (from_s == _WA).fillna(False) & ~(to_s == _WA).fillna(False)
    rows = log.loc[(starts | leaves) & log["chat_id"].notna()]
    # Each chat's rows in time order alternate "a wait starts" / "it ends"; a repeated start
    # (already waiting) or end (not waiting) changes nothing, so only the rows whose kind differs
    # from the chat's previous row count, and a chat's first row counts only if it starts a wait.
    chat = rows["chat_id"].to_numpy(dtype="int64")
    order = np.argsort(chat, kind="stable")  # by chat, time order kept
    chat = chat[order]
    is_start = starts.loc[rows.index].to_numpy(dtype=bool)[order]
    same_chat = np.zeros(len(chat), dtype=bool)
    same_chat[1:] = chat[1:] == chat[:-1]
    prev_start = np.zeros(len(chat), dtype=bool)
    prev_start[1:] = is_start[:-1]
    keep = np.where(is_start, ~(same_chat & prev_start), same_chat & prev_start)
    k_order, k_chat, k_start = order[keep], chat[keep], is_start[keep]
    times = rows["time"].to_numpy(dtype="float64")
    # a kept start is closed by the next kept row when that row is of the same chat (it is an end)
    closed = np.zeros(len(k_chat), dtype=bool)
    closed[:-1] = k_start[:-1] & (k_chat[1:] == k_chat[:-1])
    opened = k_start & ~closed
    s_idx, e_idx = k_order[:-1][closed[:-1]], k_order[1:][closed[:-1]]
    by_close = np.argsort(e_idx, kind="stable")  # rows in the order their wait ended, as a replay finds them
    s_idx, e_idx = s_idx[by_close], e_idx[by_close]
    served = (rows["event"].to_numpy(dtype=object)[e_idx] == Event.ASSIGN.value)
    ops, reasons = _col(rows, "operator_id")[e_idx], _col(rows, "reason")[e_idx]
    o_idx = k_order[opened]
    began_c, ended_c, began_o = times[s_idx], times[e_idx], times[o_idx]
    end_o = np.maximum(duration, began_o)
    outcome = np.concatenate([np.where(served, "served", "ended").astype(object),
                              np.full(len(o_idx), "open", dtype=object)])
    none_o = np.full(len(o_idx), None, dtype=object)
    frame = pd.DataFrame({
        "chat_id": pd.array(np.concatenate([rows["chat_id"].to_numpy(dtype="int64")[s_idx],
                                            rows["chat_id"].to_numpy(dtype="int64")[o_idx]]), dtype="Int64"),
        "start": np.concatenate([began_c, began_o]),
        "end": np.concatenate([ended_c, end_o]),
        "wait_s": np.concatenate([ended_c - began_c, end_o - began_o]),
        "outcome": pd.Categorical(outcome, categories=["served", "ended", "open"]),
        "operator_id": pd.array(np.concatenate([np.where(served, ops, None), none_o]), dtype="Int64"),
        "end_reason": np.concatenate([np.where(served, None, reasons), none_o]),
    }, columns=list(WAIT_COLUMNS))
    frame = frame.loc[frame["start"].to_numpy() >= window_start(log)]
    return frame.sort_values(["start", "chat_id"], kind="stable").reset_index(drop=True)


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation; ``None`` for no data."""
    arr = np.asarray(list(values), dtype="float64")
    return float(np.percentile(arr, q)) if len(arr) else None


def wait_summary(waits: pd.DataFrame, service_level_t: float = DEFAULT_SERVICE_LEVEL_T) -> dict[str, Any]:
    """Statistics of served waits, censored waits kept apart, and the service level."""
    served = waits.loc[waits["outcome"] == "served", "wait_s"].to_numpy(dtype="float64")
    ended = waits.loc[waits["outcome"] == "ended", "wait_s"].to_numpy(dtype="float64")
    still = waits.loc[waits["outcome"] == "open", "wait_s"].to_numpy(dtype="float64")
    censored = np.concatenate([ended, still])
    within = int(np.sum(served <= service_level_t))
    known = len(served) + len(ended) + int(np.sum(still > service_level_t))
    return {
        "waits": int(len(waits)),
        "served": int(len(served)),
        "mean_s": _num(served.mean()) if len(served) else None,
        "p50_s": percentile(served, 50),
        "p90_s": percentile(served, 90),
        "p99_s": percentile(served, 99),
        "max_s": _num(served.max()) if len(served) else None,
        "service_level_t_s": float(service_level_t),
        "served_within_t": within,
        "service_level": _rate(within, known),
        "service_level_served_only": _rate(within, len(served)),
        "censored": int(len(censored)),
        "censored_ended": int(len(ended)),
        "censored_open": int(len(still)),
        "censored_mean_s": _num(censored.mean()) if len(censored) else None,
        "censored_max_s": _num(censored.max()) if len(censored) else None,
    }


def wait_cdf(waits: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Empirical CDF of served waits: sorted waits (s) and the share served within each."""
    served = np.sort(waits.loc[waits["outcome"] == "served", "wait_s"].to_numpy(dtype="float64"))
    return served, np.arange(1, len(served) + 1) / max(len(served), 1)


# --------------------------------------------------------------------------- states


@derived
def state_intervals(log: pd.DataFrame) -> pd.DataFrame:
    """Each chat's stay in each state: chat_id, state, start, end, closed, operator_id.

    A stay starts on a row whose ``to_state`` differs from the chat's previous ``to_state``
    and lasts until the chat's next change (``closed``) or ``duration`` (not closed).
    ``operator_id`` is the operator of the row that began the stay (the assignee for
    ``assigned``).  Stays are clipped to the metrics window: one in progress at ``W`` starts
    there, one over before it is left out (so is a completion before it).
    """
    log = prepare(log)
    duration = run_duration(log)
    rows = log.loc[log["to_state"].notna() & log["chat_id"].notna(), ["time", "chat_id", "operator_id", "to_state"]]
    state = rows["to_state"].astype(object)
    prev = state.groupby(rows["chat_id"]).shift()
    change = rows.loc[(state != prev) | prev.isna()].copy()
    change["state"] = change["to_state"].astype(object)
    nxt = change.groupby("chat_id")["time"].shift(-1)
    change["closed"] = nxt.notna()
    change["end"] = nxt.fillna(duration).astype("float64")
    change["end"] = np.maximum(change["end"].to_numpy(), change["time"].to_numpy())
    out = change.rename(columns={"time": "start"})[["chat_id", "state", "start", "end", "closed", "operator_id"]]
    start = window_start(log)
    if start > 0:
        before = out["start"].to_numpy() < start
        gone = before & ((out["end"].to_numpy() <= start) | (out["state"] == State.COMPLETED.value).to_numpy())
        out = out.loc[~gone].copy()
        out["start"] = np.maximum(out["start"].to_numpy(), start)
    out["state"] = out["state"].astype(pd.CategoricalDtype(list(ALL_STATES)))
    return out.reset_index(drop=True)


def state_occupancy(log: pd.DataFrame) -> pd.DataFrame:
    """Chat-seconds spent in each open state and its share (index: state)."""
    iv = state_intervals(log)
    iv = iv.loc[iv["state"].isin(OPEN_STATES)]
    seconds = (iv["end"] - iv["start"]).groupby(iv["state"].astype(object)).sum()
    seconds = seconds.reindex(list(OPEN_STATES), fill_value=0.0).astype("float64")
    total = float(seconds.sum())
    frame = pd.DataFrame({"seconds": seconds, "share": seconds / total if total else np.nan})
    frame.index.name = "state"
    return frame


@derived
def state_counts_series(log: pd.DataFrame) -> pd.DataFrame:
    """Number of chats in each state over time: a step function, one row per change time.

    Columns: time, then one column per state (``completed`` is cumulative).  The first row
    is the window's start ``W`` (0 without a warm-up); each row holds the counts after all
    events at that time.
    """
    iv = state_intervals(log)
    log = prepare(log)
    duration, first = run_duration(log), window_start(log)
    codes = {state: i for i, state in enumerate(ALL_STATES)}
    st = np.array([codes[s] for s in iv["state"].astype(object)], dtype="int64") if len(iv) else np.zeros(0, "int64")
    closed = iv["closed"].to_numpy(dtype=bool)
    times = np.concatenate([[first], iv["start"].to_numpy(dtype="float64"), iv["end"].to_numpy(dtype="float64")[closed]])
    states = np.concatenate([[codes[_WA]], st, st[closed]])
    deltas = np.concatenate([[0], np.ones(len(st), "int64"), -np.ones(int(closed.sum()), "int64")])
    uniq, row = np.unique(times, return_inverse=True)  # one row per change time, in order
    counts = np.zeros((len(uniq), len(ALL_STATES)), dtype="int64")
    np.add.at(counts, (row, states), deltas)
    counts = np.cumsum(counts, axis=0)
    if duration > uniq[-1]:
        uniq, counts = np.append(uniq, duration), np.vstack([counts, counts[-1:]])
    table = pd.DataFrame(counts, columns=list(ALL_STATES))
    table.insert(0, "time", uniq)
    return table


def queue_length_series(log: pd.DataFrame) -> pd.DataFrame:
    """Chats waiting for assignment over time (step function): columns time, queue_length."""
    counts = state_counts_series(log)
    return counts[["time", _WA]].rename(columns={_WA: "queue_length"})


def step_mean(times: np.ndarray, values: np.ndarray, lo: float, hi: float) -> float | None:
    """Time-weighted mean over [lo, hi] of a right-continuous step function."""
    if hi <= lo or len(times) == 0:
        return None
    times = np.asarray(times, dtype="float64")
    values = np.asarray(values, dtype="float64")
    ends = np.append(times[1:], max(hi, times[-1]))
    overlap = np.clip(np.minimum(ends, hi) - np.maximum(times, lo), 0.0, None)
    return float(np.sum(overlap * values) / (hi - lo))


# --------------------------------------------------------------------------- health


@derived
def idle_releases(log: pd.DataFrame) -> pd.DataFrame:
    """One row per ``idle_release``: time, chat_id, operator_id (row's, else the chat's
    assignee), from_state, ``operator_idle`` (ground truth, <NA> without ground truth),
    ``false_positive``."""
    log = prepare(log)
    truth_mask = log["event"].isin([OperatorEvent.IDLE.value, OperatorEvent.ACTIVE.value])
    has_truth = bool(truth_mask.any())
    online = online_intervals(log) if has_truth else {}
    idle_changes: dict[int, list[tuple[float, bool]]] = {}
    for t, op, ev in zip(log.loc[truth_mask, "time"], _col(log.loc[truth_mask], "operator_id"),
                         _col(log.loc[truth_mask], "event")):
        if op is not None:
            idle_changes.setdefault(int(op), []).append((float(t), ev == OperatorEvent.IDLE.value))
    assignee: dict[int, int | None] = {}
    out: list[tuple] = []
    relevant = log.loc[log["event"].isin([Event.ASSIGN.value, Event.IDLE_RELEASE.value])]
    for t, chat, op, ev, frm in zip(relevant["time"].to_numpy(), _col(relevant, "chat_id"),
                                    _col(relevant, "operator_id"), _col(relevant, "event"),
                                    _col(relevant, "from_state")):
        if ev == Event.ASSIGN.value:
            if chat is not None:
                assignee[int(chat)] = op
            continue
        who = op if op is not None else (assignee.get(int(chat)) if chat is not None else None)
        idle: bool | None = None
        if has_truth and who is not None:
            idle = False
            for ct, is_idle in idle_changes.get(int(who), []):
                if ct <= t:
                    idle = is_idle
                else:
                    break
            idle = idle or not _online_at(online.get(int(who), [(0.0, math.inf)]), float(t))
        false_positive = frm == _WR or (has_truth and idle is False)
        out.append((float(t), chat, who, frm, idle, bool(false_positive)))
    frame = pd.DataFrame(out, columns=["time", "chat_id", "operator_id", "from_state", "operator_idle", "false_positive"])
    frame = frame.astype({"time": "float64", "chat_id": "Int64", "operator_id": "Int64",
                          "operator_idle": "boolean", "false_positive": "bool"})
    frame = frame.loc[frame["time"].to_numpy() >= window_start(log)].reset_index(drop=True)
    frame.attrs["ground_truth"] = has_truth
    return frame

