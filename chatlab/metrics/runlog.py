"""A run's event log as the metrics read it: canonical frame, run window, operators, JSON-safe facts.

Every metric function starts from :func:`prepare` (the typed, time-sorted frame of
``sim/eventlog.py``) and reads run-level facts from ``log.attrs`` through the helpers here, so
the definitions in ``docs/semantics.md`` ("Metrics") are applied the same way everywhere.
"""

from __future__ import annotations

import contextvars
import functools
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from sim.errors import InvalidEventLog
from sim.eventlog import coerce, is_canonical, jsonable
from sim.statemachine import State

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

_T = TypeVar("_T")
_SHARED: contextvars.ContextVar[dict[tuple[str, int], tuple[Any, Any]] | None] = contextvars.ContextVar(
    "chatlab_metrics_shared", default=None)


@contextmanager
def shared_derivations() -> Iterator[None]:
    """Within this block each :func:`derived` table of a log is computed once.

    Why scoped, not a global cache: a log is a mutable DataFrame, so a table may only be reused
    while nobody can have changed it — during one :func:`~chatlab.metrics.analysis.analyse` or
    ``compute_metrics`` call, where the per-operator, per-hour, guarantee and health sections
    would otherwise rebuild the same state stays and waits five times over (at a floor-day log
    of 2.7 million rows that is tens of seconds).  Re-entrant: an inner block shares the outer one.
    """
    if _SHARED.get() is not None:
        yield
        return
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def derived(fn: Callable[[pd.DataFrame], _T]) -> Callable[[pd.DataFrame], _T]:
    """Mark a pure ``log -> table`` function whose result :func:`shared_derivations` may reuse.

    The result is shared, so callers must treat it as read-only (copy before changing it).
    """

    @functools.wraps(fn)
    def wrapper(log: pd.DataFrame) -> _T:
        cache = _SHARED.get()
        if cache is None:
            return fn(log)
        key = (fn.__qualname__, id(log))
        hit = cache.get(key)
        if hit is not None and hit[0] is log:
            return hit[1]
        value = fn(log)
        cache[key] = (log, value)  # the log is kept alive, so its id cannot be reused meanwhile
        return value

    return wrapper

def prepare(log: pd.DataFrame) -> pd.DataFrame:
    """Return the log with canonical dtypes, sorted by time (stable), ``attrs`` kept.

    Accepts anything :func:`sim.eventlog.coerce` accepts, so hand-built frames and logs read
    from CSV work too; raises :class:`~sim.eventlog.InvalidEventLog` otherwise.
    """
    if not isinstance(log, pd.DataFrame):
        raise InvalidEventLog(f"expected an event-log DataFrame, got {type(log).__name__}")
    if is_canonical(log):
        return log  # already prepared: every function here calls prepare(), keep that free
    attrs = dict(log.attrs)
    out = coerce(log)
    if len(out) and not out["time"].is_monotonic_increasing:
        out = out.sort_values("time", kind="stable")
    out = out.reset_index(drop=True)
    out.attrs = attrs
    return out


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


def window_start(log: pd.DataFrame) -> float:
    """Start of the metrics window ``[W, duration]``: ``attrs["warmup"]`` (the warm-up cut), clamped to
    ``[0, duration]``; 0 without one.

    Every metric counts what happens at ``t >= W`` and clips stays and online time to the
    window, so a floor filling up from empty does not bias a steady-state estimate.
    """
    value = log.attrs.get("warmup")
    if value == "auto":  # not resolved yet (analyse() resolves it once): MSER-5 now
        from chatlab.metrics.warmup import mser5_warmup

        value = mser5_warmup(log)
    try:
        value = float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        value = 0.0
    if not math.isfinite(value) or value <= 0:
        return 0.0
    return min(value, run_duration(log))


@derived
def in_window(log: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``log`` inside the metrics window (``time >= W``), attrs kept."""
    start = window_start(log)
    if start <= 0:
        return log
    out = log.loc[log["time"].to_numpy() >= start]
    out.attrs = dict(log.attrs)
    return out


@derived
def chat_starts(log: pd.DataFrame) -> pd.Series:
    """Chat id -> the time of its first row (when it opened)."""
    rows = log.loc[log["chat_id"].notna(), ["chat_id", "time"]].drop_duplicates("chat_id")
    return pd.Series(rows["time"].to_numpy(dtype="float64"), index=rows["chat_id"].astype("int64").to_numpy())


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
        "warmup_s": window_start(log),
        "warmup_method": jsonable(a.get("warmup_method") or ("fixed" if window_start(log) > 0 else None)),
        "operators": len(operator_ids(log)) if not isinstance(ops, (int, np.integer)) else max(int(ops), len(operator_ids(log))),
        "events": int(len(log)),
    }

