"""The tidy event log: one row per event, typed columns.  Every metric is a function of it.

Both sides produce it: the simulation records rows as it runs, and the load test rebuilds
the same frame from the database's history (``chatlab/db/history.py``).  Keeping the
schema in one place is what makes the sim-vs-database comparison apples to apples.

Columns (in this order):

=============  ================  ===========================================================
column         dtype             meaning
=============  ================  ===========================================================
time           float64           seconds since the run started, in *scenario* time
chat_id        Int64 (nullable)  the chat; <NA> for operator-only events
operator_id    Int64 (nullable)  the operator involved; <NA> when none (e.g. a user message)
event          category          an :class:`~sim.statemachine.Event` value or an
                                 :class:`OperatorEvent` value
from_state     category          chat state before the event; <NA> when the chat is new
                                 or for operator events
to_state       category          chat state after the event; <NA> for operator events
reason         category          free-form qualifier: ``resolved``/``abandoned`` for
                                 ``end``, ``manual_fix`` for a stuck release, ...
topic          category          the chat's topic (every row of a chat); <NA> for operator
                                 events and for chats opened without one
user_id        Int64 (nullable)  the chat's real user (every row of a chat): a returning
                                 user's chats share it (known-agent routing); <NA> for
                                 operator events
=============  ================  ===========================================================

A log written before topics (or users) existed has no ``topic`` (``user_id``) column;
reading it adds one of <NA>.

Run-level facts (scenario name, policy, seed, source, duration, time scale) live in
``df.attrs`` so a single frame is self-describing.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.errors import InvalidEventLog
from sim.statemachine import Event, State


class OperatorEvent(str, Enum):
    """Events about an operator rather than a chat."""

    ONLINE = "operator_online"  # shift starts / operator logs in
    OFFLINE = "operator_offline"  # shift ends / operator logs out
    IDLE = "operator_idle"  # operator stops responding (ground truth; the sim knows it)
    ACTIVE = "operator_active"  # operator responds again after being idle

    def __str__(self) -> str:
        return self.value


COLUMNS: tuple[str, ...] = ("time", "chat_id", "operator_id", "event", "from_state", "to_state", "reason", "topic",
                            "user_id")
EVENT_NAMES: tuple[str, ...] = tuple(e.value for e in Event) + tuple(e.value for e in OperatorEvent)
STATE_NAMES: tuple[str, ...] = tuple(s.value for s in State)

DTYPES: dict[str, Any] = {
    "time": "float64",
    "chat_id": "Int64",
    "operator_id": "Int64",
    "event": pd.CategoricalDtype(EVENT_NAMES),
    "from_state": pd.CategoricalDtype(STATE_NAMES),
    "to_state": pd.CategoricalDtype(STATE_NAMES),
    "reason": "category",
    "topic": "category",
    "user_id": "Int64",
}
#: Columns that free text fills (categories of whatever values occur).
_FREE_TEXT = ("reason", "topic")


def _text(value: object) -> object:
    if value is None:
        return None
    return value.value if isinstance(value, Enum) else value


class EventLogBuilder:
    """Append-only recorder; cheap per row, converts to a typed DataFrame once at the end."""

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: list[tuple] = []

    def record(
        self,
        time: float,
        event: Event | OperatorEvent | str,
        *,
        chat_id: int | None = None,
        operator_id: int | None = None,
        from_state: State | str | None = None,
        to_state: State | str | None = None,
        reason: str | None = None,
        topic: str | None = None,
        user_id: int | None = None,
    ) -> None:
        self._rows.append(
            (float(time), chat_id, operator_id, _text(event), _text(from_state), _text(to_state), reason, topic,
             user_id)
        )

    def __len__(self) -> int:
        return len(self._rows)

    def to_frame(self, attrs: Mapping[str, Any] | None = None) -> pd.DataFrame:
        return from_records(self._rows, attrs)


def from_records(rows: Iterable[tuple] | Iterable[Mapping[str, Any]], attrs: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Build a typed, time-sorted event log from tuples (in :data:`COLUMNS` order) or dicts.

    A tuple may stop before ``topic`` or ``user_id`` (missing values).
    """
    width = len(COLUMNS)
    rows = [r if isinstance(r, Mapping) or len(r) == width else (*r, *([None] * (width - len(r)))) for r in rows]
    if rows and isinstance(rows[0], Mapping):
        frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    else:
        frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS)) if rows else pd.DataFrame(columns=list(COLUMNS))
    frame = coerce(frame)
    frame = frame.sort_values("time", kind="stable").reset_index(drop=True)
    frame.attrs.update(dict(attrs or {}))
    return frame


def empty_log(attrs: Mapping[str, Any] | None = None) -> pd.DataFrame:
    return from_records([], attrs)


def coerce(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast a frame with the right columns to the canonical dtypes; raise on unknown values.

    A frame without ``topic`` or ``user_id`` (written before they existed) gets one of <NA>.
    """
    for late in ("topic", "user_id"):
        if late not in frame.columns:
            frame = frame.assign(**{late: None})
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidEventLog(f"event log is missing columns {missing}; expected {list(COLUMNS)}")
    out = frame.loc[:, list(COLUMNS)].copy()
    out = out.astype({"time": "float64", "chat_id": "Int64", "operator_id": "Int64", "user_id": "Int64"})
    for col in ("event", "from_state", "to_state"):
        values = out[col].astype("object")
        allowed = DTYPES[col].categories
        bad = sorted({str(v) for v in values.dropna().unique()} - set(allowed))
        if bad:
            raise InvalidEventLog(f"event log column {col!r} has unknown values {bad}; expected one of {list(allowed)}")
        out[col] = values.astype(DTYPES[col])
    for col in _FREE_TEXT:
        out[col] = out[col].astype("object").where(out[col].notna(), None).astype("category")
    return out


def is_canonical(frame: pd.DataFrame) -> bool:
    """Columns, dtypes, a 0..n-1 index and time order exactly as :func:`coerce` and sorting leave them."""
    if tuple(frame.columns) != COLUMNS or not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0:
        return False
    for col, dtype in DTYPES.items():
        have = frame[col].dtype
        if not (isinstance(have, pd.CategoricalDtype) if col in _FREE_TEXT else have == dtype):
            return False
    return bool(frame["time"].is_monotonic_increasing) if len(frame) else True


def validate(frame: pd.DataFrame) -> pd.DataFrame:
    """Check schema and dtypes of a log; return it unchanged or raise :class:`InvalidEventLog`."""
    if tuple(frame.columns) != COLUMNS:
        raise InvalidEventLog(f"event log columns are {list(frame.columns)}; expected {list(COLUMNS)}")
    for col, dtype in DTYPES.items():
        if col in _FREE_TEXT:
            if not isinstance(frame[col].dtype, pd.CategoricalDtype):
                raise InvalidEventLog(f"event log column {col!r} has dtype {frame[col].dtype}; expected category")
        elif str(frame[col].dtype) != str(dtype):
            raise InvalidEventLog(f"event log column {col!r} has dtype {frame[col].dtype}; expected {dtype}")
    if len(frame) and not frame["time"].is_monotonic_increasing:
        raise InvalidEventLog("event log is not sorted by time")
    return frame


def write_log(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a log as Parquet (``.parquet``) or CSV (anything else).

    The CSV goes through Arrow's writer (text columns quoted, ``0`` for ``0.0``): pandas'
    ``to_csv`` took 11 s for a floor day's 2.7 million rows, Arrow's about an eighth of that,
    and :func:`read_log` reads both back to the identical frame.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        table = pa.Table.from_pandas(frame, preserve_index=False)
        plain = pa.schema([pa.field(f.name, pa.string() if pa.types.is_dictionary(f.type) else f.type)
                           for f in table.schema])  # categories as their text
        pa_csv.write_csv(table.cast(plain), path, pa_csv.WriteOptions(quoting_style="needed"))
    return path


def read_log(path: str | Path) -> pd.DataFrame:
    """Read a log written by :func:`write_log` (Parquet or CSV) back to canonical dtypes."""
    path = Path(path)
    if not path.exists():
        raise InvalidEventLog(f"{path}: no such event log file")
    try:
        raw = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise InvalidEventLog(f"{path}: cannot read event log ({exc})") from None
    try:
        return coerce(raw)
    except InvalidEventLog as exc:
        raise InvalidEventLog(f"{path}: {exc}") from None


# --------------------------------------------------------------------------- a run's log on disk

#: The files a run's event log is saved as (Parquet keeps dtypes and attrs; CSV is for people).
LOG_NAMES = ("events.parquet", "events.csv")
#: The log's attrs and the run's label beside it (CSV cannot hold attrs).
RUN_SIDECAR = "run.json"


def jsonable(value: Any) -> Any:
    """Make attrs values JSON-safe (numpy scalars, enums, dataclasses, paths, NaN)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return [jsonable(v) for v in value]
    if hasattr(value, "value") and isinstance(getattr(value, "value"), (str, int)):
        return value.value
    if hasattr(value, "__dataclass_fields__"):
        return jsonable(dataclasses.asdict(value))
    return str(value)


def save_log(log: pd.DataFrame, out_dir: Path, *, label: str | None = None) -> None:
    """Write ``events.parquet``, ``events.csv`` and ``run.json`` (attrs + label) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    attrs = jsonable(dict(log.attrs))
    frame = log.copy()
    frame.attrs = attrs  # parquet stores attrs as JSON: keep them JSON-safe
    write_log(frame, out_dir / LOG_NAMES[0])
    write_log(frame, out_dir / LOG_NAMES[1])
    (out_dir / RUN_SIDECAR).write_text(json.dumps({"label": label, "attrs": attrs}, indent=2, allow_nan=False) + "\n")


def load_log(path: Path) -> tuple[pd.DataFrame, str | None]:
    """Read one event log; attrs come from the file (parquet) or a ``run.json`` beside it.

    Returns the log and the label recorded in ``run.json`` (or ``None``).
    """
    path = Path(path)
    log = read_log(path)
    sidecar = path.parent / RUN_SIDECAR
    label = None
    if sidecar.exists():
        try:
            info = json.loads(sidecar.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidEventLog(f"{sidecar}: cannot read run attributes ({exc})") from None
        label = info.get("label")
        for key, value in (info.get("attrs") or {}).items():
            log.attrs.setdefault(key, value)
    return log, label


def run_log_path(path: Path) -> Path:
    """The event log of one run: ``path`` itself, or the ``events.*`` file in a run's directory."""
    path = Path(path)
    if not path.exists():
        raise InvalidEventLog(f"{path}: no such file or directory (expected an event log or a run's directory)")
    if path.is_file():
        return path
    for name in LOG_NAMES:
        if (path / name).is_file():
            return path / name
    runs = sorted({p.parent.name for name in LOG_NAMES for p in path.glob(f"*/{name}")})
    if runs:
        raise InvalidEventLog(f"{path}: holds {len(runs)} runs' event logs in its sub-directories; give one run's "
                              f"directory or events file")
    raise InvalidEventLog(f"{path}: no events.parquet or events.csv in it")

