"""Every number the lab reports, computed from one thing: the tidy event log (``sim/eventlog.py``).

The same functions serve a simulated run and a log rebuilt from PostgreSQL's history, so a
difference between the two is a difference in behaviour, never in bookkeeping.  Every
function here is pure: it reads the log (and its ``attrs``) and returns numbers or frames.

Definitions (also in the README, "Metrics and reports"):

* **Run window** ``[0, duration]`` where ``duration = attrs["duration"]`` (falls back to the
  time of the last event).
* **Operators** are every operator id seen in the log, plus those declared in
  ``attrs["operators"]`` (an operator who never got a chat still counts against fairness).
* **Online time**: ``operator_online`` / ``operator_offline`` events bound each operator's
  online intervals.  An operator whose first such event is ``operator_offline`` was online
  from 0; one left online is online until ``duration``; one with neither event is online the
  whole run.
* **Fairness indices** of non-negative values x_1..x_n (mean m):
  Gini = sum_ij |x_i - x_j| / (2 n^2 m) (0 = equal, (n-1)/n = one takes all);
  Jain = (sum x)^2 / (n sum x^2) (1 = equal, 1/n = one takes all);
  CV = population standard deviation / mean; max/min ratio (null when min is 0).
  All are null when there is nothing to distribute (no operators or all values 0).
  The *weighted* variants use each operator's count per online hour, over the operators
  that were online at all, so a half-time operator with half the chats is perfectly fair.
* **Wait**: starts on a row whose ``to_state`` is ``waiting_assignment`` and whose
  ``from_state`` is anything else (a new chat has no from_state; a user reply; a release)
  and is *served* by the chat's next row that leaves ``waiting_assignment`` if that row is
  an ``assign``.  A wait that ends any other way (``end``: abandonment or closure while
  queued) or is still open at ``duration`` is *censored*: it is reported separately, never
  mixed into the percentiles.  Percentiles use linear interpolation (numpy's default).
* **Service level** (threshold T, default 60 s): served waits with wait <= T divided by all
  waits whose outcome relative to T is known (served + ended in the queue + still open but
  already longer than T).  ``service_level_served_only`` divides by served waits only.
* **Abandonment rate**: ``end`` rows with reason ``abandoned`` / chats in the log.
* **Repeat assignment**: an ``assign`` whose operator equals the operator of the same
  chat's previous ``assign``.  **Premature assignment**: an ``assign`` whose
  ``from_state`` is ``waiting_real_user_reply`` (nothing to answer).  Rates are per assign.
* **Stuck**: an ``assigned`` episode (entering ``assigned`` until leaving it, or ``duration``)
  longer than ``stuck_after`` seconds (default ``attrs["stuck_after"]``, else 3600).
* **Idle false positive**: an ``idle_release`` from ``waiting_real_user_reply``, or, when the
  log has ground truth (any ``operator_idle``/``operator_active`` row), an ``idle_release``
  at a moment its operator was neither idle (an ``operator_idle`` not yet followed by
  ``operator_active``) nor offline.
* **Queue length**: chats in ``waiting_assignment`` (a step function of time).
* **State occupancy**: chat-seconds spent in each open state (``completed`` is terminal and
  not counted) and each state's share of the total.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.errors import InvalidEventLog
from sim.eventlog import COLUMNS, DTYPES, OperatorEvent, coerce
from sim.statemachine import Event, State

#: Bump when a key of :func:`compute_metrics` changes meaning or disappears.
SCHEMA_VERSION = 1
DEFAULT_SERVICE_LEVEL_T = 60.0
DEFAULT_STUCK_AFTER = 3600.0
#: States whose occupancy is measured (``completed`` is terminal).
OPEN_STATES: tuple[str, ...] = (
    State.WAITING_ASSIGNMENT.value,
    State.ASSIGNED.value,
    State.WAITING_REAL_USER_REPLY.value,
)
ALL_STATES: tuple[str, ...] = (*OPEN_STATES, State.COMPLETED.value)

_WA = State.WAITING_ASSIGNMENT.value
_AS = State.ASSIGNED.value
_WR = State.WAITING_REAL_USER_REPLY.value


# --------------------------------------------------------------------------- helpers


def prepare(log: pd.DataFrame) -> pd.DataFrame:
    """Return the log with canonical dtypes, sorted by time (stable), ``attrs`` kept.

    Accepts anything :func:`sim.eventlog.coerce` accepts, so hand-built frames and logs read
    from CSV work too; raises :class:`~sim.eventlog.InvalidEventLog` otherwise.
    """
    if not isinstance(log, pd.DataFrame):
        raise InvalidEventLog(f"expected an event-log DataFrame, got {type(log).__name__}")
    if _is_canonical(log):
        return log  # already prepared: every function here calls prepare(), keep that free
    attrs = dict(log.attrs)
    out = coerce(log)
    if len(out) and not out["time"].is_monotonic_increasing:
        out = out.sort_values("time", kind="stable")
    out = out.reset_index(drop=True)
    out.attrs = attrs
    return out


def _is_canonical(log: pd.DataFrame) -> bool:
    """Columns, dtypes, a 0..n-1 index and time order exactly as :func:`prepare` leaves them."""
    if tuple(log.columns) != COLUMNS or not isinstance(log.index, pd.RangeIndex) or log.index.start != 0:
        return False
    for col, dtype in DTYPES.items():
        have = log[col].dtype
        if col == "reason":
            if not isinstance(have, pd.CategoricalDtype):
                return False
        elif have != dtype:
            return False
    return bool(log["time"].is_monotonic_increasing) if len(log) else True


def run_duration(log: pd.DataFrame) -> float:
    """Length of the run window: ``attrs["duration"]``, else the last event's time (0 if empty)."""
    value = log.attrs.get("duration")
    last = float(log["time"].max()) if len(log) else 0.0
    if value is not None:
        try:
            value = float(value)
        except (TypeError, ValueError):
            value = None
    if value is None or not math.isfinite(value) or value <= 0:
        return max(last, 0.0)
    return value


def declared_operators(attrs: Mapping[str, Any]) -> list[int]:
    """Operator ids named in ``attrs["operators"]`` (a list of ids, or of dicts/objects with an id).

    A bare count cannot name ids, so it contributes nothing here (the log still does).
    """
    ops = attrs.get("operators")
    if ops is None or isinstance(ops, (int, float, str)):
        return []
    if isinstance(ops, Mapping):
        ops = list(ops.keys())
    ids: list[int] = []
    for item in ops:
        if isinstance(item, Mapping):
            item = item.get("operator_id", item.get("id"))
        elif not isinstance(item, (int, np.integer, str)):
            item = getattr(item, "operator_id", getattr(item, "id", None))
        try:
            ids.append(int(item))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
    return ids


def operator_ids(log: pd.DataFrame) -> list[int]:
    """All operators of the run: declared in attrs or seen in any row, sorted."""
    seen = set(int(x) for x in log["operator_id"].dropna().unique())
    return sorted(seen | set(declared_operators(log.attrs)))


def stuck_threshold(attrs: Mapping[str, Any], stuck_after: float | None = None) -> float:
    """The stuck threshold: the argument, else ``attrs["stuck_after"]``, else 3600 s."""
    if stuck_after is not None:
        return float(stuck_after)
    for key in ("stuck_after", "stuck_threshold"):
        value = attrs.get(key)
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    return DEFAULT_STUCK_AFTER


def _col(log: pd.DataFrame, name: str) -> np.ndarray:
    """A column as a numpy object array with ``None`` for missing values."""
    return log[name].astype(object).where(log[name].notna(), None).to_numpy()


def _num(value: Any) -> float | None:
    """A float for JSON: ``None`` for NaN/inf/missing."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _rate(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


# --------------------------------------------------------------------------- fairness


def _values(values: Iterable[float]) -> np.ndarray:
    arr = np.asarray(list(values), dtype="float64")
    if np.any(arr < 0) or not np.all(np.isfinite(arr)):
        raise ValueError("fairness indices need finite, non-negative values")
    return arr


def gini(values: Iterable[float]) -> float | None:
    """Gini coefficient: 0 = perfectly even, (n-1)/n = one operator gets everything."""
    x = np.sort(_values(values))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return None
    ranks = np.arange(1, n + 1)
    return float(2.0 * np.sum(ranks * x) / (n * total) - (n + 1) / n)


def jain(values: Iterable[float]) -> float | None:
    """Jain's fairness index: 1 = perfectly even, 1/n = one operator gets everything."""
    x = _values(values)
    n, sq = len(x), float(np.sum(x * x))
    if n == 0 or sq == 0:
        return None
    return float(x.sum() ** 2 / (n * sq))


def coefficient_of_variation(values: Iterable[float]) -> float | None:
    """Population standard deviation over the mean (0 = even)."""
    x = _values(values)
    if len(x) == 0 or x.mean() == 0:
        return None
    return float(x.std(ddof=0) / x.mean())


def max_min_ratio(values: Iterable[float]) -> float | None:
    """Largest over smallest value; ``None`` when the smallest is 0 (unbounded) or no data."""
    x = _values(values)
    if len(x) == 0 or x.min() == 0:
        return None
    return float(x.max() / x.min())


def fairness_summary(values: Iterable[float]) -> dict[str, float | int | None]:
    """All fairness indices of one distribution, plus n, min, max, mean and total."""
    x = _values(values)
    return {
        "n": int(len(x)),
        "total": _num(x.sum()) if len(x) else 0.0,
        "mean": _num(x.mean()) if len(x) else None,
        "min": _num(x.min()) if len(x) else None,
        "max": _num(x.max()) if len(x) else None,
        "gini": gini(x),
        "jain": jain(x),
        "cv": coefficient_of_variation(x),
        "max_min_ratio": max_min_ratio(x),
    }


def lorenz_curve(values: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    """Points of the Lorenz curve: cumulative share of operators vs cumulative share of work."""
    x = np.sort(_values(values))
    if len(x) == 0 or x.sum() == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    cum = np.concatenate([[0.0], np.cumsum(x) / x.sum()])
    return np.linspace(0.0, 1.0, len(x) + 1), cum


# --------------------------------------------------------------------------- operators


def online_intervals(log: pd.DataFrame) -> dict[int, list[tuple[float, float]]]:
    """Each operator's online intervals within ``[0, duration]`` (see module docstring)."""
    log = prepare(log)
    duration = run_duration(log)
    ops = operator_ids(log)
    mask = log["event"].isin([OperatorEvent.ONLINE.value, OperatorEvent.OFFLINE.value]) & log["operator_id"].notna()
    rows = log.loc[mask, ["time", "operator_id", "event"]]
    by_op: dict[int, list[tuple[float, str]]] = {}
    for t, op, ev in zip(rows["time"].to_numpy(), _col(rows, "operator_id"), _col(rows, "event")):
        by_op.setdefault(int(op), []).append((float(t), ev))
    result: dict[int, list[tuple[float, float]]] = {}
    for op in ops:
        events = by_op.get(op)
        if not events:
            result[op] = [(0.0, duration)] if duration > 0 else []
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
        result[op] = [(a, b) for a, b in intervals if b > a]
    return result


def _online_at(intervals: list[tuple[float, float]], t: float) -> bool:
    return any(a <= t <= b for a, b in intervals)


def _overlap(intervals: list[tuple[float, float]], lo: float, hi: float) -> float:
    return sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in intervals)


# --------------------------------------------------------------------------- assignments


def assignments(log: pd.DataFrame) -> pd.DataFrame:
    """One row per ``assign``: time, chat_id, operator_id, from_state, previous_operator_id,
    ``repeat`` (same operator as the chat's previous assign) and ``premature`` (assigned from
    ``waiting_real_user_reply``)."""
    log = prepare(log)
    rows = log.loc[log["event"] == Event.ASSIGN.value, ["time", "chat_id", "operator_id", "from_state"]].copy()
    rows["previous_operator_id"] = rows.groupby("chat_id", dropna=False)["operator_id"].shift()
    rows["previous_operator_id"] = rows["previous_operator_id"].astype("Int64")
    same = rows["operator_id"] == rows["previous_operator_id"]
    rows["repeat"] = same.fillna(False).astype(bool)
    rows["premature"] = (rows["from_state"] == _WR).fillna(False).astype(bool)
    return rows.reset_index(drop=True)


# --------------------------------------------------------------------------- waits


WAIT_COLUMNS = ("chat_id", "start", "end", "wait_s", "outcome", "operator_id", "end_reason")


def wait_episodes(log: pd.DataFrame) -> pd.DataFrame:
    """One row per wait for assignment (see module docstring).

    ``outcome`` is ``served`` (ended by an assign; ``operator_id`` is the assignee),
    ``ended`` (the chat was closed while queued; ``end_reason`` e.g. ``abandoned``) or
    ``open`` (still waiting at ``duration``).  ``wait_s`` is the (possibly censored) length.
    """
    log = prepare(log)
    duration = run_duration(log)
    to_s, from_s = log["to_state"], log["from_state"]
    starts = (to_s == _WA).fillna(False) & ~(from_s == _WA).fillna(False)
    leaves = (from_s == _WA).fillna(False) & ~(to_s == _WA).fillna(False)
    rows = log.loc[(starts | leaves) & log["chat_id"].notna()]
    is_start = starts.loc[rows.index].to_numpy()
    open_waits: dict[int, float] = {}
    out: list[tuple] = []
    for t, chat, op, ev, reason, start in zip(
        rows["time"].to_numpy(), _col(rows, "chat_id"), _col(rows, "operator_id"),
        _col(rows, "event"), _col(rows, "reason"), is_start,
    ):
        if start:
            open_waits.setdefault(int(chat), float(t))
            continue
        began = open_waits.pop(int(chat), None)
        if began is None:
            continue
        if ev == Event.ASSIGN.value:
            out.append((int(chat), began, float(t), float(t) - began, "served", op, None))
        else:
            out.append((int(chat), began, float(t), float(t) - began, "ended", None, reason))
    for chat, began in open_waits.items():
        end = max(duration, began)
        out.append((chat, began, end, end - began, "open", None, None))
    frame = pd.DataFrame(out, columns=list(WAIT_COLUMNS))
    frame = frame.astype({"chat_id": "Int64", "start": "float64", "end": "float64", "wait_s": "float64",
                          "operator_id": "Int64"})
    frame["outcome"] = frame["outcome"].astype(pd.CategoricalDtype(["served", "ended", "open"]))
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


def state_intervals(log: pd.DataFrame) -> pd.DataFrame:
    """Each chat's stay in each state: chat_id, state, start, end, closed, operator_id.

    A stay starts on a row whose ``to_state`` differs from the chat's previous ``to_state``
    and lasts until the chat's next change (``closed``) or ``duration`` (not closed).
    ``operator_id`` is the operator of the row that began the stay (the assignee for
    ``assigned``).
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


def state_counts_series(log: pd.DataFrame) -> pd.DataFrame:
    """Number of chats in each state over time: a step function, one row per change time.

    Columns: time, then one column per state (``completed`` is cumulative).  The first row
    is time 0 with all zeros; each row holds the counts after all events at that time.
    """
    iv = state_intervals(log)
    duration = run_duration(prepare(log))
    deltas = [pd.DataFrame({"time": [0.0], "state": [_WA], "d": [0]})]
    if len(iv):
        st = iv["state"].astype(object)
        deltas.append(pd.DataFrame({"time": iv["start"], "state": st, "d": 1}))
        closed = iv["closed"].to_numpy(dtype=bool)
        deltas.append(pd.DataFrame({"time": iv["end"][closed], "state": st[closed], "d": -1}))
    d = pd.concat(deltas, ignore_index=True)
    table = d.pivot_table(index="time", columns="state", values="d", aggfunc="sum", fill_value=0)
    table = table.reindex(columns=list(ALL_STATES), fill_value=0).sort_index().cumsum()
    if 0.0 not in table.index:
        table.loc[0.0] = 0
        table = table.sort_index()
    if duration > table.index.max():
        table.loc[duration] = table.iloc[-1]
    table = table.astype("int64").reset_index()
    table.columns.name = None
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
    frame.attrs["ground_truth"] = has_truth
    return frame


# --------------------------------------------------------------------------- tables


PER_OPERATOR_COLUMNS = (
    "operator_id", "online_s", "online_h", "assignments", "replies", "assignment_share", "reply_share",
    "assignments_per_online_hour", "replies_per_online_hour", "repeat_assignments",
    "premature_assignments", "assigned_s", "idle_releases", "idle_false_positives",
)


def per_operator(log: pd.DataFrame) -> pd.DataFrame:
    """One row per operator (all operators of the run, even those who got nothing).

    Columns: see :data:`PER_OPERATOR_COLUMNS`; rates per online hour are NaN for an operator
    never online.  ``assigned_s`` is the chat-seconds its chats spent ``assigned`` to it.
    """
    log = prepare(log)
    ops = operator_ids(log)
    online = online_intervals(log)
    frame = pd.DataFrame({"operator_id": pd.array(ops, dtype="Int64")})
    frame["online_s"] = [sum(b - a for a, b in online.get(op, [])) for op in ops]
    frame["online_h"] = frame["online_s"] / 3600.0
    asg = assignments(log)
    replies = log.loc[log["event"] == Event.OPERATOR_REPLY.value]

    def count(series: pd.Series) -> list[int]:
        counts = series.dropna().astype("int64").value_counts()
        return [int(counts.get(op, 0)) for op in ops]

    frame["assignments"] = count(asg["operator_id"])
    frame["replies"] = count(replies["operator_id"])
    total_a, total_r = frame["assignments"].sum(), frame["replies"].sum()
    frame["assignment_share"] = frame["assignments"] / total_a if total_a else np.nan
    frame["reply_share"] = frame["replies"] / total_r if total_r else np.nan
    hours = frame["online_h"].where(frame["online_h"] > 0)
    frame["assignments_per_online_hour"] = frame["assignments"] / hours
    frame["replies_per_online_hour"] = frame["replies"] / hours
    frame["repeat_assignments"] = count(asg.loc[asg["repeat"], "operator_id"])
    frame["premature_assignments"] = count(asg.loc[asg["premature"], "operator_id"])
    iv = state_intervals(log)
    held = iv.loc[iv["state"] == _AS].dropna(subset=["operator_id"])
    held_s = (held["end"] - held["start"]).groupby(held["operator_id"].astype("int64")).sum()
    frame["assigned_s"] = [float(held_s.get(op, 0.0)) for op in ops]
    idle = idle_releases(log)
    frame["idle_releases"] = count(idle["operator_id"])
    frame["idle_false_positives"] = count(idle.loc[idle["false_positive"], "operator_id"])
    return frame.loc[:, list(PER_OPERATOR_COLUMNS)]


def per_hour(log: pd.DataFrame, *, service_level_t: float = DEFAULT_SERVICE_LEVEL_T) -> pd.DataFrame:
    """One row per hour of scenario time (hour 0 = [0, 3600) ...; the last hour holds ``duration``).

    Columns: hour, start_s, end_s, new_chats, assignments, replies, repeat_assignments,
    premature_assignments, abandoned, waits_started, waits_served, wait_mean_s, wait_p90_s,
    service_level_served_only (waits bucketed by the hour they started), queue_mean,
    operators_online_mean, assignments_per_operator_hour.
    """
    log = prepare(log)
    duration = run_duration(log)
    n_hours = max(1, math.ceil(duration / 3600.0)) if duration > 0 else 1

    def bucket(times: pd.Series | np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(times, dtype="float64") // 3600.0).astype("int64"), 0, n_hours - 1)

    def count(times: pd.Series | np.ndarray) -> np.ndarray:
        return np.bincount(bucket(times), minlength=n_hours)[:n_hours]

    asg = assignments(log)
    waits = wait_episodes(log)
    queue = queue_length_series(log)
    online = online_intervals(log)
    new = log.loc[log["from_state"].isna() & log["to_state"].notna() & log["chat_id"].notna(), "time"]
    abandoned = log.loc[(log["event"] == Event.END.value) & (log["reason"].astype(object) == "abandoned"), "time"]
    rows = []
    wait_bucket = bucket(waits["start"])
    for h in range(n_hours):
        lo, hi = h * 3600.0, min((h + 1) * 3600.0, duration) if duration > 0 else (h + 1) * 3600.0
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
    frame.insert(5, "replies", count(log.loc[log["event"] == Event.OPERATOR_REPLY.value, "time"]))
    frame.insert(6, "repeat_assignments", count(asg.loc[asg["repeat"], "time"]))
    frame.insert(7, "premature_assignments", count(asg.loc[asg["premature"], "time"]))
    frame.insert(8, "abandoned", count(abandoned))
    frame["assignments_per_operator_hour"] = frame["assignments"] / frame["_op_hours"].where(frame["_op_hours"] > 0)
    return frame.drop(columns="_op_hours")


# --------------------------------------------------------------------------- the summary


def jsonable(value: Any) -> Any:
    """Make attrs values JSON-safe (numpy scalars, enums, dataclasses, paths, NaN)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _num(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return [jsonable(v) for v in value]
    if hasattr(value, "value") and isinstance(getattr(value, "value"), (str, int)):
        return value.value
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return jsonable(dataclasses.asdict(value))
    return str(value)


def run_info(log: pd.DataFrame) -> dict[str, Any]:
    """The run-level facts of ``attrs`` that reports print (JSON-safe)."""
    a = log.attrs
    ops = a.get("operators")
    return {
        "scenario": jsonable(a.get("scenario")),
        "policy": jsonable(getattr(a.get("policy"), "name", a.get("policy"))),
        "policy_params": jsonable(a.get("policy_params") or {}),
        "seed": jsonable(a.get("seed")),
        "source": jsonable(a.get("source")),
        "mode": jsonable(a.get("mode")),
        "time_scale": jsonable(a.get("time_scale")),
        "duration_s": run_duration(log),
        "operators": len(operator_ids(log)) if not isinstance(ops, (int, np.integer)) else max(int(ops), len(operator_ids(log))),
        "events": int(len(log)),
    }


@dataclass(frozen=True)
class _Parts:
    """Intermediate tables shared by :func:`compute_metrics` (computed once)."""

    per_operator: pd.DataFrame
    assignments: pd.DataFrame
    waits: pd.DataFrame
    intervals: pd.DataFrame
    state_counts: pd.DataFrame
    idle: pd.DataFrame

    @property
    def queue(self) -> pd.DataFrame:
        return self.state_counts[["time", _WA]].rename(columns={_WA: "queue_length"})


def compute_metrics(
    log: pd.DataFrame, *, service_level_t: float = DEFAULT_SERVICE_LEVEL_T, stuck_after: float | None = None
) -> dict[str, Any]:
    """All run-level metrics of one event log as a JSON-serialisable dict with stable keys.

    Sections: ``schema_version``, ``run``, ``params``, ``counts``, ``fairness``, ``wait``,
    ``assignment``, ``health``, ``occupancy`` (every key is listed in the README and in
    :data:`METRIC_DOCS`).  Values that cannot be defined (e.g. p99 with no served wait) are
    ``None``, never NaN, so the JSON is strict.
    """
    return _metrics_and_parts(log, service_level_t=service_level_t, stuck_after=stuck_after)[0]


def _metrics_and_parts(
    log: pd.DataFrame, *, service_level_t: float, stuck_after: float | None
) -> tuple[dict[str, Any], _Parts]:
    """:func:`compute_metrics` plus the tables it was computed from (reused by :func:`analyse`)."""
    log = prepare(log)
    if service_level_t < 0 or not math.isfinite(service_level_t):
        raise InvalidEventLog(f"service level threshold must be a finite number of seconds >= 0, got {service_level_t!r}")
    duration = run_duration(log)
    threshold = stuck_threshold(log.attrs, stuck_after)
    parts = _Parts(
        per_operator=per_operator(log),
        assignments=assignments(log),
        waits=wait_episodes(log),
        intervals=state_intervals(log),
        state_counts=state_counts_series(log),
        idle=idle_releases(log),
    )
    ev = log["event"].astype(object)
    chats = int(log["chat_id"].dropna().nunique())
    ended = log.loc[ev == Event.END.value]
    abandoned = int((ended["reason"].astype(object) == "abandoned").sum())
    counts = {
        "chats": chats,
        "assignments": int(len(parts.assignments)),
        "replies": int((ev == Event.OPERATOR_REPLY.value).sum()),
        "user_messages": int((ev == Event.USER_MESSAGE.value).sum()),
        "unassigns": int((ev == Event.UNASSIGN.value).sum()),
        "idle_releases": int((ev == Event.IDLE_RELEASE.value).sum()),
        "stuck_releases": int((ev == Event.STUCK_RELEASE.value).sum()),
        "ended": int(len(ended)),
        "resolved": int((ended["reason"].astype(object) == "resolved").sum()),
        "abandoned": abandoned,
    }
    po = parts.per_operator
    online = po.loc[po["online_s"] > 0]
    fairness = {
        "operators": int(len(po)),
        "assignments": fairness_summary(po["assignments"]),
        "replies": fairness_summary(po["replies"]),
        "assignments_per_online_hour": fairness_summary(online["assignments_per_online_hour"]),
        "replies_per_online_hour": fairness_summary(online["replies_per_online_hour"]),
    }
    wait = wait_summary(parts.waits, service_level_t)
    wait["abandoned"] = abandoned
    wait["abandonment_rate"] = _rate(abandoned, chats)
    asg = parts.assignments
    assignment = {
        "total": int(len(asg)),
        "repeat": int(asg["repeat"].sum()),
        "repeat_rate": _rate(int(asg["repeat"].sum()), len(asg)),
        "premature": int(asg["premature"].sum()),
        "premature_rate": _rate(int(asg["premature"].sum()), len(asg)),
    }
    iv = parts.intervals
    held = iv.loc[iv["state"] == _AS]
    long = held.loc[(held["end"] - held["start"]) > threshold]
    q_t, q_v = parts.queue["time"].to_numpy(), parts.queue["queue_length"].to_numpy()
    idle = parts.idle
    health = {
        "stuck_after_s": threshold,
        "stuck_chats": int(long["chat_id"].nunique()),
        "stuck_episodes": int(len(long)),
        "stuck_open_at_end": int((~long["closed"]).sum()),
        "stuck_releases": counts["stuck_releases"],
        "idle_releases": counts["idle_releases"],
        "idle_ground_truth": bool(idle.attrs.get("ground_truth", False)),
        "idle_false_positives": int(idle["false_positive"].sum()),
        "idle_false_positive_rate": _rate(int(idle["false_positive"].sum()), len(idle)),
        "queue_mean": step_mean(q_t, q_v, 0.0, duration) if duration > 0 else None,
        "queue_max": int(q_v.max()) if len(q_v) else 0,
        "queue_final": int(q_v[-1]) if len(q_v) else 0,
    }
    occ = state_occupancy(log)
    occupancy = {state: {"seconds": _num(occ.at[state, "seconds"]) or 0.0, "share": _num(occ.at[state, "share"])}
                 for state in OPEN_STATES}
    return {
        "schema_version": SCHEMA_VERSION,
        "run": run_info(log),
        "params": {"service_level_t_s": float(service_level_t), "stuck_after_s": threshold},
        "counts": counts,
        "fairness": fairness,
        "wait": wait,
        "assignment": assignment,
        "health": health,
        "occupancy": occupancy,
    }, parts


#: What each key of :func:`compute_metrics` means.  ``<dist>`` / ``<stat>`` / ``<state>`` are
#: expanded by :func:`documented_keys`; a test checks the expansion equals the real keys.
METRIC_DOCS: dict[str, str] = {
    "schema_version": "version of this key layout (bumped when a key changes meaning)",
    "run.scenario": "scenario name (attrs)",
    "run.policy": "policy name (attrs)",
    "run.policy_params": "policy parameters, e.g. {\"fallback_after\": 300} (attrs; JSON text in CSV)",
    "run.seed": "random seed (attrs)",
    "run.source": "where the log came from: sim, db, loadtest ... (attrs)",
    "run.mode": "assignment mode, e.g. pull/push (attrs)",
    "run.time_scale": "scenario seconds per wall second (attrs; load tests)",
    "run.duration_s": "length of the run window in scenario seconds",
    "run.operators": "number of operators in the run",
    "run.events": "rows in the event log",
    "params.service_level_t_s": "service-level threshold T used for wait.service_level (s)",
    "params.stuck_after_s": "threshold above which an assigned stay counts as stuck (s)",
    "counts.chats": "distinct chats in the log",
    "counts.assignments": "assign events",
    "counts.replies": "operator_reply events (handled messages)",
    "counts.user_messages": "user_message events (including the one that opens a chat)",
    "counts.unassigns": "unassign events",
    "counts.idle_releases": "idle_release events",
    "counts.stuck_releases": "stuck_release events",
    "counts.ended": "end events",
    "counts.resolved": "end events with reason resolved",
    "counts.abandoned": "end events with reason abandoned",
    "fairness.operators": "operators the fairness indices are computed over (all of the run's operators)",
    "fairness.<dist>.n": "operators in this distribution (per-online-hour ones: operators online at all)",
    "fairness.<dist>.total": "sum of the values",
    "fairness.<dist>.mean": "mean value per operator",
    "fairness.<dist>.min": "smallest value",
    "fairness.<dist>.max": "largest value",
    "fairness.<dist>.gini": "Gini coefficient: 0 even, (n-1)/n one operator takes all; null if nothing to share",
    "fairness.<dist>.jain": "Jain's index (sum x)^2/(n sum x^2): 1 even, 1/n one takes all; null if nothing",
    "fairness.<dist>.cv": "coefficient of variation (population std / mean); null if mean is 0",
    "fairness.<dist>.max_min_ratio": "max / min; null when min is 0",
    "wait.waits": "waits for assignment that started (served + censored)",
    "wait.served": "waits ended by an assign",
    "wait.mean_s": "mean served wait (s)",
    "wait.p50_s": "median served wait (s, linear interpolation)",
    "wait.p90_s": "90th percentile served wait (s)",
    "wait.p99_s": "99th percentile served wait (s)",
    "wait.max_s": "longest served wait (s)",
    "wait.service_level_t_s": "threshold T (s)",
    "wait.served_within_t": "served waits with wait <= T",
    "wait.service_level": "served within T / waits with a known outcome (served + ended in queue + open > T)",
    "wait.service_level_served_only": "served within T / served",
    "wait.censored": "waits not ended by an assign (censored_ended + censored_open)",
    "wait.censored_ended": "waits ended by the chat ending while queued (e.g. abandoned)",
    "wait.censored_open": "waits still open at the end of the run",
    "wait.censored_mean_s": "mean censored length (a lower bound of the real wait) (s)",
    "wait.censored_max_s": "longest censored length (s)",
    "wait.abandoned": "chats ended with reason abandoned",
    "wait.abandonment_rate": "abandoned / chats",
    "assignment.total": "assign events",
    "assignment.repeat": "assigns to the same operator as the chat's previous assign",
    "assignment.repeat_rate": "repeat / total (0 under the seed's fix)",
    "assignment.premature": "assigns from waiting_real_user_reply (nothing to answer)",
    "assignment.premature_rate": "premature / total (0 under the seed's fix)",
    "health.stuck_after_s": "stuck threshold (s)",
    "health.stuck_chats": "chats with at least one assigned stay longer than the threshold",
    "health.stuck_episodes": "assigned stays longer than the threshold",
    "health.stuck_open_at_end": "of those, still assigned when the run ended",
    "health.stuck_releases": "stuck_release events",
    "health.idle_releases": "idle_release events",
    "health.idle_ground_truth": "true when the log has operator_idle/operator_active rows to judge releases by",
    "health.idle_false_positives": "idle releases of a chat whose operator was not idle/offline, or from waiting_real_user_reply",
    "health.idle_false_positive_rate": "idle_false_positives / idle_releases",
    "health.queue_mean": "time-weighted mean number of chats in waiting_assignment",
    "health.queue_max": "largest queue length",
    "health.queue_final": "queue length at the end of the run",
    "occupancy.<state>.seconds": "chat-seconds spent in the state",
    "occupancy.<state>.share": "share of all open-state chat-seconds",
}
FAIRNESS_DISTRIBUTIONS: tuple[str, ...] = (
    "assignments", "replies", "assignments_per_online_hour", "replies_per_online_hour",
)


def documented_keys() -> list[str]:
    """:data:`METRIC_DOCS` with the placeholders expanded, in :func:`compute_metrics` order."""
    keys: list[str] = []
    for key in METRIC_DOCS:
        if "<dist>" in key:
            continue
        if "<state>" in key:
            continue
        keys.append(key)
    expanded: list[str] = []
    for key in keys:
        expanded.append(key)
        if key == "fairness.operators":
            stats = [k.split(".")[-1] for k in METRIC_DOCS if k.startswith("fairness.<dist>.")]
            expanded += [f"fairness.{d}.{s}" for d in FAIRNESS_DISTRIBUTIONS for s in stats]
    stats = [k.split(".")[-1] for k in METRIC_DOCS if k.startswith("occupancy.<state>.")]
    expanded += [f"occupancy.{st}.{s}" for st in OPEN_STATES for s in stats]
    return expanded


def metric_docs_markdown() -> str:
    """The README's ``metrics.json`` key table, generated from :data:`METRIC_DOCS` so they cannot drift.

    ``<dist>`` is one of :data:`FAIRNESS_DISTRIBUTIONS`; ``<state>`` one of :data:`OPEN_STATES`.
    """
    lines = ["| key | meaning |", "|---|---|"]
    lines += [f"| `{key}` | {text.replace('|', '/')} |" for key, text in METRIC_DOCS.items()]
    return "\n".join(lines)


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys (``wait.p99_s``) for CSV rows and tables; ``run.policy_params`` becomes JSON text."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and name != "run.policy_params":
            flat.update(flatten_metrics(value, f"{name}."))
        elif isinstance(value, Mapping):
            import json

            flat[name] = json.dumps(value, sort_keys=True)
        else:
            flat[name] = value
    return flat


def metric_keys() -> list[str]:
    """Every dotted key :func:`compute_metrics` returns (computed on an empty log)."""
    from sim.eventlog import empty_log

    return list(flatten_metrics(compute_metrics(empty_log({"duration": 1.0}))).keys())


def get_metric(metrics: Mapping[str, Any], dotted: str) -> Any:
    """Look up ``"wait.p99_s"`` in a nested metrics dict; ``KeyError`` names the missing part."""
    value: Any = metrics
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


__all__ = [
    "COLUMNS", "SCHEMA_VERSION", "DEFAULT_SERVICE_LEVEL_T", "DEFAULT_STUCK_AFTER", "OPEN_STATES", "ALL_STATES",
    "jsonable", "prepare", "run_duration", "operator_ids", "declared_operators", "stuck_threshold",
    "gini", "jain", "coefficient_of_variation", "max_min_ratio", "fairness_summary", "lorenz_curve",
    "online_intervals", "assignments", "wait_episodes", "percentile", "wait_summary", "wait_cdf",
    "state_intervals", "state_occupancy", "state_counts_series", "queue_length_series", "step_mean",
    "idle_releases", "per_operator", "per_hour", "run_info", "compute_metrics", "flatten_metrics",
    "metric_keys", "get_metric", "metric_docs_markdown", "Analysis", "analyse", "default_label", "METRIC_DOCS", "documented_keys", "FAIRNESS_DISTRIBUTIONS",
]


@dataclass(frozen=True)
class Analysis:
    """One run analysed once: the log, its metrics dict and the tables reports and plots need."""

    label: str
    log: pd.DataFrame
    metrics: dict[str, Any]
    per_operator: pd.DataFrame
    per_hour: pd.DataFrame
    waits: pd.DataFrame
    state_counts: pd.DataFrame
    #: For a run pooled over several seeds (``chatlab.pooling``): the std of every numeric
    #: metric over the seeds (same layout as ``metrics``, which then holds the means) and
    #: the seeds.  Empty for a single run.
    spread: dict[str, Any] | None = None
    seeds: tuple[int, ...] = ()

    @property
    def queue(self) -> pd.DataFrame:
        return self.state_counts[["time", _WA]].rename(columns={_WA: "queue_length"})


def default_label(log: pd.DataFrame) -> str:
    """A run's name in tables and legends: the policy (with parameters), else the source."""
    info = run_info(log)
    label = str(info["policy"] or info["source"] or "run")
    params = info["policy_params"] or {}
    if params:
        label += "(" + ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) + ")"
    return label


def analyse(
    log: pd.DataFrame,
    *,
    label: str | None = None,
    service_level_t: float = DEFAULT_SERVICE_LEVEL_T,
    stuck_after: float | None = None,
) -> Analysis:
    """Compute the metrics and every table of one run (what a report needs), once."""
    log = prepare(log)
    metrics, parts = _metrics_and_parts(log, service_level_t=service_level_t, stuck_after=stuck_after)
    return Analysis(
        label=label or default_label(log),
        log=log,
        metrics=metrics,
        per_operator=parts.per_operator,
        per_hour=per_hour(log, service_level_t=service_level_t),
        waits=parts.waits,
        state_counts=parts.state_counts,
    )
