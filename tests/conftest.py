"""Shared fixtures: a real PostgreSQL for the whole session, a fresh schema per test.

No psycopg import at module level: Locust tests need gevent to patch ``select`` before
psycopg is imported in their subprocesses, and pytest imports this file everywhere.

* ``pg_uri`` (session): ``$DATABASE_URL`` if set, else one private embedded server
  (``chatlab.db.server.temporary_server``) started on first use and stopped + deleted at
  the end of the session.
* ``db`` (function): a :class:`chatlab.db.client.ChatDB` on a uniquely named schema with
  every migration applied (~25 ms), dropped afterwards.  Tests never share rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def pg_uri() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from chatlab.db.server import temporary_server

    with temporary_server(prefix="chatlab-test-pg-") as uri:
        yield uri


@pytest.fixture
def fresh_schema(pg_uri: str) -> Iterator[str]:
    """A migrated, uniquely named schema (dropped afterwards); yields its name."""
    from chatlab.db.migrate import drop_schema, migrate

    schema = f"test_{uuid.uuid4().hex[:12]}"
    migrate(pg_uri, schema)
    try:
        yield schema
    finally:
        drop_schema(pg_uri, schema)


@pytest.fixture
def db(pg_uri: str, fresh_schema: str) -> Iterator["ChatDB"]:  # noqa: F821 (lazy import)
    from chatlab.db.client import ChatDB

    with ChatDB(pg_uri, fresh_schema) as client:
        yield client
