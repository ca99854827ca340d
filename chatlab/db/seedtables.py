"""The seed's four tables as a team's production history: read from PostgreSQL or from CSV exports.

Why the seed's tables and nothing else: a team that runs the seed's system has
``operators``, ``chats``, ``messages`` and ``chat_assignments`` (the seed's column names,
its README's monitoring queries) but none of the lab's own bookkeeping (``chat_events``).
So ``chatlab calibrate`` and the outside targets' history read only these.  A database is
read with ``COPY ... TO STDOUT (FORMAT csv, HEADER)`` (named query ``copy_table_out``) —
exactly what ``chatlab db export`` writes — so a database and its export go through one
parser and give the same frames.

Ids may be integers (the lab's) or text such as UUIDs (the seed's ``'operator-a-id'``);
they are kept as text here and numbered by :mod:`chatlab.db.seedlog`.  Timestamps are
parsed as UTC.  Every missing table or column is one :class:`SeedTablesError` naming it.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from chatlab.db.migrate import check_schema
from chatlab.db.queries import query
from sim.errors import ChatLabError

if TYPE_CHECKING:
    import psycopg

#: table -> the columns a history must have (the seed's names).
REQUIRED: dict[str, tuple[str, ...]] = {
    "operators": ("id",),
    "chats": ("id", "real_user_id", "created_at", "updated_at", "is_active"),
    "messages": ("chat_id", "sender_type", "sender_id", "created_at"),
    "chat_assignments": ("chat_id", "operator_id", "assigned_at", "released_at", "release_reason"),
}
#: table -> columns read when present (``max_chats``: capacity; ``topic``: the lab's floors).
OPTIONAL: dict[str, tuple[str, ...]] = {
    "operators": ("name", "max_chats"),
    "chats": ("topic",),
    "messages": (),
    "chat_assignments": (),
}
TABLES: tuple[str, ...] = tuple(REQUIRED)
_TIMES = {"chats": ("created_at", "updated_at"), "messages": ("created_at",),
          "chat_assignments": ("assigned_at", "released_at")}
_IDS = {"operators": ("id",), "chats": ("id", "real_user_id"), "messages": ("chat_id", "sender_id"),
        "chat_assignments": ("chat_id", "operator_id")}


class SeedTablesError(ChatLabError):
    """A history source without one of the seed's tables or columns, or with a value that cannot be read."""


@dataclass(frozen=True)
class SeedTables:
    """The four tables as frames: ids as text, timestamps as UTC, ``is_active`` as bool."""

    operators: pd.DataFrame
    chats: pd.DataFrame
    messages: pd.DataFrame
    chat_assignments: pd.DataFrame
    source: str  # what was read, for messages and reports

    def table(self, name: str) -> pd.DataFrame:
        return getattr(self, name)


def _bool(series: pd.Series, where: str) -> pd.Series:
    text = series.astype("string").str.strip().str.lower()
    mapped = text.map({"t": True, "true": True, "1": True, "f": False, "false": False, "0": False})
    bad = mapped.isna() & text.notna()
    if bad.any():
        raise SeedTablesError(f"{where}: expected true/false (t/f), got {text[bad].iloc[0]!r}")
    return mapped.fillna(True).astype(bool)


def _frame(name: str, raw: pd.DataFrame, where: str) -> pd.DataFrame:
    missing = [c for c in REQUIRED[name] if c not in raw.columns]
    if missing:
        raise SeedTablesError(f"{where}: no column {missing[0]!r} (the seed's {name} table needs "
                              f"{', '.join(REQUIRED[name])})")
    keep = [c for c in (*REQUIRED[name], *OPTIONAL[name]) if c in raw.columns]
    out = raw.loc[:, keep].copy()
    for col in _IDS[name]:
        ids = out[col].astype("string").str.strip()
        if col != "real_user_id" and ids.isna().any():
            raise SeedTablesError(f"{where}: column {col!r} has an empty value in row {int(ids.isna().argmax()) + 2}")
        out[col] = ids
    for col in _TIMES.get(name, ()):
        try:
            out[col] = pd.to_datetime(out[col], utc=True, format="ISO8601")
        except (ValueError, TypeError):
            parsed = pd.to_datetime(out[col], utc=True, format="ISO8601", errors="coerce")
            bad = parsed.isna() & out[col].notna()
            raise SeedTablesError(f"{where}: column {col!r} is not a timestamp: {out[col][bad].iloc[0]!r} in row "
                                  f"{int(bad.to_numpy().argmax()) + 2} (expected ISO 8601, e.g. "
                                  "2026-03-01 08:00:00+00)") from None
    required_times = [c for c in _TIMES.get(name, ()) if c != "released_at"]
    for col in required_times:
        if out[col].isna().any():
            raise SeedTablesError(f"{where}: column {col!r} has an empty timestamp in row {int(out[col].isna().argmax()) + 2}")
    if name == "chats":
        out["is_active"] = _bool(out["is_active"], f"{where}: column 'is_active'")
    if name == "messages":
        kinds = out["sender_type"].astype("string")
        bad = ~kinds.isin(["real_user", "operator"])
        if bad.any():
            raise SeedTablesError(f"{where}: column 'sender_type' must be 'real_user' or 'operator', "
                                  f"got {kinds[bad].iloc[0]!r}")
    if name == "operators" and "max_chats" in out.columns:
        caps = pd.to_numeric(out["max_chats"], errors="coerce")
        bad = out["max_chats"].notna() & ~((caps >= 1) & (caps % 1 == 0))
        if bad.any():
            raise SeedTablesError(f"{where}: column 'max_chats' must be a whole number >= 1, got "
                                  f"{out['max_chats'][bad].iloc[0]!r} in row {int(bad.to_numpy().argmax()) + 2}")
        out["max_chats"] = caps.astype("Int64")
    return out


def read_csv_dir(directory: str | Path) -> SeedTables:
    """``DIR/operators.csv``, ``chats.csv``, ``messages.csv``, ``chat_assignments.csv`` (headers = column names)."""
    root = Path(directory)
    if not root.is_dir():
        raise SeedTablesError(f"{root}: not a directory of CSV exports (operators.csv, chats.csv, messages.csv, "
                              "chat_assignments.csv)")
    frames: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        path = root / f"{name}.csv"
        if not path.is_file():
            raise SeedTablesError(f"{root}: no {name}.csv (the seed's table {name!r})")
        try:
            raw = _parse_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise SeedTablesError(f"{path}: not a CSV table ({str(exc).splitlines()[0]})") from None
        frames[name] = _frame(name, raw, str(path))
    return SeedTables(**frames, source=str(root))


@contextmanager
def _connection(conninfo_or_conn: "str | psycopg.Connection") -> Iterator["psycopg.Connection"]:
    """A connection (the caller's, or a new autocommit one, closed afterwards); every database error
    comes out as the lab's error class (:func:`chatlab.db.errors.translate`)."""
    import psycopg

    from chatlab.db.errors import translate

    owned = not isinstance(conninfo_or_conn, psycopg.Connection)
    try:
        conn = psycopg.connect(conninfo_or_conn, autocommit=True) if owned else conninfo_or_conn
    except psycopg.Error as exc:
        raise translate(exc) from exc
    try:
        yield conn
    except psycopg.Error as exc:
        raise translate(exc) from exc
    finally:
        if owned:
            conn.close()


def _parse_csv(source: "Path | io.BytesIO") -> pd.DataFrame:
    """One table's CSV as text columns (empty = missing), message bodies skipped: one parser for
    a database's ``COPY`` and an export's file."""
    return pd.read_csv(source, dtype=str, keep_default_na=False, na_values=[""], usecols=lambda c: c != "body")


def table_columns(conn: "psycopg.Connection", schema: str) -> dict[str, list[str]]:
    rows = conn.execute(query("seed_table_columns"), {"schema": schema, "tables": list(TABLES)}).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def table_columns_of(conninfo: str, schema: str) -> dict[str, list[str]]:
    """:func:`table_columns` on a connection of its own."""
    check_schema(schema)
    with _connection(conninfo) as conn:
        return table_columns(conn, schema)


def check_tables(columns: Mapping[str, list[str]], where: str) -> None:
    """Name the first missing table or required column (before anything is read)."""
    for name in TABLES:
        if name not in columns:
            raise SeedTablesError(f"{where}: no table {name!r} (the seed's tables: {', '.join(TABLES)})")
        missing = [c for c in REQUIRED[name] if c not in columns[name]]
        if missing:
            raise SeedTablesError(f"{where}: table {name!r} has no column {missing[0]!r} "
                                  f"(needed: {', '.join(REQUIRED[name])})")


def copy_csv(conn: "psycopg.Connection", schema: str, table: str) -> tuple[bytes, int]:
    """One table as CSV bytes (header first), by ``COPY ... TO STDOUT``, and its row count."""
    buffer = io.BytesIO()
    conn.execute(query("iso_timestamps"))  # whatever the server's DateStyle: ISO 8601, in UTC
    with conn.cursor() as cur:
        with cur.copy(query("copy_table_out", schema=schema, table=table)) as copy:
            for chunk in copy:
                buffer.write(chunk)
        return buffer.getvalue(), max(0, cur.rowcount)


def read_database(conninfo_or_conn: "str | psycopg.Connection", schema: str = "public") -> SeedTables:
    """The four tables of ``schema`` (through the same CSV parser as :func:`read_csv_dir`)."""
    check_schema(schema)
    where = f"schema {schema!r}"
    with _connection(conninfo_or_conn) as conn:
        check_tables(table_columns(conn, schema), where)
        frames = {name: _frame(name, _parse_csv(io.BytesIO(copy_csv(conn, schema, name)[0])),
                               f"{where}, table {name!r}") for name in TABLES}
    return SeedTables(**frames, source=where)


def export_csv(conninfo: str, schema: str, directory: str | Path) -> dict[str, int]:
    """Write the four tables of ``schema`` as ``DIR/<table>.csv``; returns rows per table.

    Checks every table first and writes nothing if one is missing; the files appear only
    once all four were read (a failed export leaves no half-written directory behind).
    """
    check_schema(schema)
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise SeedTablesError(f"{root}: exists and is not a directory")
    with _connection(conninfo) as conn:
        check_tables(table_columns(conn, schema), f"schema {schema!r}")
        data = {name: copy_csv(conn, schema, name) for name in TABLES}
    try:
        root.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=".export-", dir=root))
        try:  # all four files or none: written aside, then moved in
            for name, (blob, _) in data.items():
                (staged / f"{name}.csv").write_bytes(blob)
            for name in data:
                (staged / f"{name}.csv").replace(root / f"{name}.csv")
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    except OSError as exc:
        raise SeedTablesError(f"{root}: cannot write the export ({exc.strerror or exc})") from None
    return {name: rows for name, (_, rows) in data.items()}
