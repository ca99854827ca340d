"""The database side of a load-test run: fresh schema, seeded operators, history, clean-up.

Thin on purpose: the schema, the functions and the history reader are the DB helper's
(``chatlab.db.migrate``, ``chatlab.db.history``); this module only decides the run's
schema and the operators in it.  psycopg is imported here, so never import this module
in a process that is going to run Locust (see ``loadtest/locustproc.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql

from loadtest.config import SeededOperator

SQL_DIR = Path(__file__).resolve().parent / "sql"


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


def create_schema(dsn: str, schema: str) -> None:
    """Create ``schema`` and apply every migration into it (the DB helper's runner)."""
    from chatlab.db.migrate import migrate

    migrate(dsn, schema)


def _connect(dsn: str, schema: str) -> psycopg.Connection:
    conn = psycopg.connect(dsn, autocommit=True, application_name="chatlab-loadtest-setup")
    conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
    return conn


def seed_operators(dsn: str, schema: str, operators: Iterable[SeededOperator]) -> int:
    """Create the run's operators (offline) in order; their ids must be the configured ones."""
    query = _sql("seed_operator.sql")
    count = 0
    with _connect(dsn, schema) as conn:
        for op in operators:
            got = conn.execute(query, {"name": op.name, "max_chats": op.max_chats}).fetchone()[0]
            if int(got) != op.operator_id:
                raise RuntimeError(f"schema {schema!r} is not fresh: operator {op.name!r} got id {got}, "
                                   f"expected {op.operator_id}")
            count += 1
    return count


def read_event_log(dsn: str, schema: str) -> pd.DataFrame:
    """The run's history as the event log (seconds since 2026-01-01T00:00:00Z, database clock)."""
    from chatlab.db.history import read_event_log as _read

    return _read(dsn, schema)


def integrity(dsn: str, schema: str) -> dict[str, int]:
    """History checks after a run (``sql/integrity.sql``): assignments, double_assigned, over_capacity."""
    with _connect(dsn, schema) as conn:
        cur = conn.execute(_sql("integrity.sql"))
        row = cur.fetchone()
        return {col.name: int(value) for col, value in zip(cur.description, row)}


def connection_budget(dsn: str) -> int:
    """Connections a load test may open: ``max_connections`` minus the reserved and the ones in use."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
            " - (SELECT count(*) FROM pg_stat_activity)").fetchone()
        return int(row[0])


def drop_schema(dsn: str, schema: str) -> None:
    """Drop the run's schema and everything in it (no error if it is already gone)."""
    from chatlab.db.migrate import drop_schema as _drop

    _drop(dsn, schema)
