"""``read_event_log``: the database's history as sim/eventlog.py's DataFrame.

Why: one metrics package (chatlab/metrics) must judge the simulation and the real
system alike.  The SQL functions write one ``chat_events`` row per state change (and per
operator online/offline change) with the same vocabulary as the simulation, so the log is
a straight projection (named query ``event_log``); ``time`` is seconds since the lab's epoch
(``chatlab_epoch()``; the scenario clock when a replay pins ``chatlab.now``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from chatlab.db.migrate import check_schema
from chatlab.db.queries import query
from sim.eventlog import COLUMNS, from_records, validate

if TYPE_CHECKING:
    import psycopg

def read_event_log(conninfo_or_conn: "str | psycopg.Connection", schema: str = "public",
                   attrs: dict[str, Any] | None = None) -> pd.DataFrame:
    """The event log of ``schema``: typed, time-sorted, validated (sim.eventlog schema)."""
    import psycopg

    from chatlab.db.errors import translate

    check_schema(schema)
    statement = query("event_log", schema=schema)
    owned = not isinstance(conninfo_or_conn, psycopg.Connection)
    try:
        conn = psycopg.connect(conninfo_or_conn, autocommit=True) if owned else conninfo_or_conn
    except psycopg.Error as exc:
        raise translate(exc) from exc
    try:
        rows = conn.execute(statement).fetchall()
    except psycopg.Error as exc:
        raise translate(exc) from exc
    finally:
        if owned:
            conn.close()
    frame = from_records([tuple(r) for r in rows], {"source": "database", "schema": schema, **(attrs or {})})
    assert tuple(frame.columns) == COLUMNS
    return validate(frame)
