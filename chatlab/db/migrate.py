"""A small migration runner: SQL in numbered files, thin Python (procrastinate-style).

Why not Alembic & co: the schema is plain SQL the seed ships as ``NNN_name.sql`` files, and
the lab needs exactly three things — apply the files in order, each in one transaction,
remember what was applied (``schema_migrations``), and refuse to run on top of an applied
file that has since been edited (its checksum changed), because then the database is no
longer what the files say.

Every migration runs with ``search_path`` set to the target schema only, so the SQL files
contain no schema names and the same files build any number of isolated schemas (one per
test, one per load-test run).  Functions capture that path with
``SET search_path FROM CURRENT``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from chatlab.db.queries import query
from sim.errors import ChatLabError

if TYPE_CHECKING:  # psycopg is imported lazily (see tests/conftest.py and the load test)
    import psycopg

#: A safe schema name: what the lab creates and accepts (no quoting surprises in psql).
SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_FILE_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
#: Key of the advisory lock that serialises concurrent migrations of one database.
_LOCK_KEY = 0x63686174  # "chat"


class MigrationError(ChatLabError):
    """A migration could not be applied, or applied ones no longer match the files."""


class InvalidSchemaName(MigrationError):
    """A schema name the lab refuses (it must be a plain lower-case identifier)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def filename(self) -> str:
        return f"{self.version:03d}_{self.name}.sql"


def check_schema(schema: str) -> str:
    """Return ``schema`` if it is a plain identifier, else raise :class:`InvalidSchemaName`."""
    if not isinstance(schema, str) or not SCHEMA_RE.match(schema) or schema.startswith("pg_"):
        raise InvalidSchemaName(
            f"invalid schema name {schema!r}: use 1-63 lower-case letters, digits or '_', "
            "starting with a letter or '_' (and not 'pg_')"
        )
    return schema


def load_migrations() -> list[Migration]:
    """The packaged ``chatlab/db/migrations/NNN_name.sql`` files, in version order."""
    found: list[Migration] = []
    for entry in resources.files("chatlab.db").joinpath("migrations").iterdir():
        match = _FILE_RE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return found


def _connect(conninfo: "str | psycopg.Connection") -> tuple["psycopg.Connection", bool]:
    import psycopg

    if isinstance(conninfo, psycopg.Connection):
        return conninfo, False
    try:
        return psycopg.connect(conninfo, autocommit=True), True
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:  # unreachable, or not a connection string
        raise MigrationError(f"cannot connect to the database: {' '.join(str(exc).split())}") from None


def applied_versions(conninfo: "str | psycopg.Connection", schema: str = "public") -> dict[int, tuple[str, str]]:
    """version -> (name, checksum) of the migrations applied to ``schema`` ({} if none)."""
    check_schema(schema)
    conn, owned = _connect(conninfo)
    try:
        if not conn.execute(query("migrations_table_exists"), {"schema": schema}).fetchone():
            return {}
        rows = conn.execute(query("applied_migrations", schema=schema)).fetchall()
        return {int(v): (n, c) for v, n, c in rows}
    finally:
        if owned:
            conn.close()


def migrate(conninfo: "str | psycopg.Connection", schema: str = "public") -> list[int]:
    """Apply every pending migration to ``schema`` (created if missing); return the versions applied.

    Idempotent: a second call applies nothing.  Each file runs in its own transaction with
    ``search_path`` = the schema, under an advisory lock so two concurrent callers cannot
    both apply it.  An applied file whose checksum changed raises :class:`MigrationError`.
    """
    import psycopg

    check_schema(schema)
    migrations = load_migrations()
    lock = {"key": _LOCK_KEY}
    conn, owned = _connect(conninfo)
    applied_now: list[int] = []
    try:
        if not conn.autocommit:
            raise MigrationError("migrate() needs an autocommit connection (it manages its own transactions)")
        with conn.transaction():
            conn.execute(query("migration_lock"), lock)
            conn.execute(query("create_schema", schema=schema))
            conn.execute(query("create_migrations_table", schema=schema))
        for migration in migrations:
            with conn.transaction():
                conn.execute(query("migration_lock"), lock)
                row = conn.execute(query("applied_migration", schema=schema), {"version": migration.version}).fetchone()
                if row is not None:
                    if row[1] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.filename} was applied to schema {schema!r} with a different "
                            f"checksum ({row[1][:12]}... != {migration.checksum[:12]}...): the file changed after it "
                            "was applied; write a new migration instead of editing an applied one"
                        )
                    continue
                conn.execute(query("set_local_search_path", schema=schema))
                try:
                    conn.execute(migration.sql.encode())  # bytes: no client-side placeholder parsing
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {migration.filename} failed in schema {schema!r}: {str(exc).strip()}"
                    ) from exc
                conn.execute(query("record_migration", schema=schema),
                             {"version": migration.version, "name": migration.name, "checksum": migration.checksum})
                applied_now.append(migration.version)
        return applied_now
    finally:
        if owned:
            conn.close()


def install_files(conninfo: "str | psycopg.Connection", schema: str, files: list[Path]) -> None:
    """Build an outside system (a load-test target's SQL files) in a new schema: each file in its own
    transaction with ``search_path`` = the schema, in the order given.  A failing file is one
    :class:`MigrationError` naming it; the schema is left for the caller to drop."""
    import psycopg

    check_schema(schema)
    conn, owned = _connect(conninfo)
    try:
        conn.execute(query("create_schema", schema=schema))
        for path in files:
            with conn.transaction():
                conn.execute(query("set_local_search_path", schema=schema))
                try:
                    conn.execute(Path(path).read_bytes())  # bytes: no client-side placeholder parsing
                except psycopg.Error as exc:
                    raise MigrationError(f"{path} failed in schema {schema!r}: {' '.join(str(exc).split())}") from exc
    finally:
        if owned:
            conn.close()


def drop_schema(conninfo: "str | psycopg.Connection", schema: str) -> None:
    """Drop ``schema`` and everything in it (tests and load-test runs clean up with this)."""
    check_schema(schema)
    if schema == "public":
        raise InvalidSchemaName("refusing to drop schema 'public'")
    conn, owned = _connect(conninfo)
    try:
        conn.execute(query("drop_schema", schema=schema))
    finally:
        if owned:
            conn.close()
