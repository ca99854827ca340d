"""``chatlab db up|migrate|verify|status|url|down|export``: manage the PostgreSQL server and schema.

The server is ``$DATABASE_URL`` when set, otherwise an embedded PostgreSQL whose cluster
lives in ``$CHATLAB_DATA_DIR/pg`` (default ``./.chatlab/pg``); it keeps running between
commands until ``chatlab db down``.  ``psql "$(chatlab db url)"`` opens a shell on it.
Only ``up`` and ``migrate`` start it: the read-only actions (``verify``, ``url``, ``export``,
``status``) say that no server is running instead of leaving one behind.
"""

from __future__ import annotations

import argparse
import os
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

ACTIONS = {
    "up": "start the server (embedded unless $DATABASE_URL) and apply the migrations",
    "migrate": "apply pending migrations to the schema",
    "verify": "run the seed's verification checks; exit 1 if any fails",
    "status": "show the server, applied migrations and the queue",
    "url": "print the connection URI (psql \"$(chatlab db url)\")",
    "down": "stop the embedded server (data stays on disk)",
    "export": "write the seed's tables (operators, chats, messages, chat_assignments) as CSV files into DIR",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=list(ACTIONS), metavar="ACTION",
                        help="; ".join(f"{k}: {v}" for k, v in ACTIONS.items()))
    parser.add_argument("--schema", default="public",
                        help="schema holding the chat tables (default: public)")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="lab data directory of the embedded server (default: $CHATLAB_DATA_DIR or ./.chatlab)")
    parser.add_argument("--no-migrate", action="store_true", help="up: only start the server")
    parser.add_argument("dir", nargs="?", default=None, metavar="DIR", help="export: the directory to write")


def _with_schema(uri: str, schema: str) -> str:
    """Add ``options=-csearch_path=<schema>`` so psql lands in the lab's schema."""
    if schema == "public":
        return uri
    parts = urlsplit(uri)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote, safe="/")))


def main(args: argparse.Namespace) -> int:
    from chatlab.db.migrate import check_schema
    from sim.errors import ChatLabError

    schema = check_schema(args.schema)
    if (args.dir is not None) != (args.action == "export"):
        raise ChatLabError("DIR: expected with 'export' only (chatlab db export --schema S DIR)"
                           if args.dir is not None else "export: expected a directory (chatlab db export --schema S DIR)")
    return {"up": _up, "migrate": _migrate, "verify": _verify, "status": _status,
            "url": _url, "down": _down, "export": _export}[args.action](args, schema)


def _running_url(args: argparse.Namespace) -> str:
    """The server's URI for a read-only action: ``$DATABASE_URL`` or the running embedded one; never starts one."""
    from chatlab.db.server import ServerError, server_status

    status = server_status(args.data_dir)
    if not status.running or status.uri is None:
        raise ServerError(f"no server is running (embedded, data directory {status.data_dir}); start it with "
                          "chatlab db up, or set $DATABASE_URL")
    return status.uri


def _export(args: argparse.Namespace, schema: str) -> int:
    from chatlab.db.seedtables import export_csv

    counts = export_csv(_running_url(args), schema, args.dir)
    print(f"schema {schema}: wrote " + ", ".join(f"{name}.csv ({rows} rows)" for name, rows in counts.items())
          + f" to {args.dir}")
    return 0


def _up(args: argparse.Namespace, schema: str) -> int:
    from chatlab.db.server import database_url, server_status

    database_url(args.data_dir)  # starts the embedded server if needed
    print(server_status(args.data_dir).describe())
    if not args.no_migrate:
        _migrate(args, schema)
    return 0


def _migrate(args: argparse.Namespace, schema: str) -> int:
    from chatlab.db.migrate import migrate
    from chatlab.db.server import database_url

    applied = migrate(database_url(args.data_dir), schema)
    if applied:
        print(f"schema {schema}: applied migrations {', '.join(f'{v:03d}' for v in applied)}")
    else:
        print(f"schema {schema}: up to date")
    return 0


def _require_migrated(uri: str, schema: str) -> None:
    from chatlab.db.migrate import applied_versions, load_migrations
    from sim.errors import ChatLabError

    applied = applied_versions(uri, schema)
    missing = [m.filename for m in load_migrations() if m.version not in applied]
    if missing:
        raise ChatLabError(f"schema {schema!r} lacks migrations {', '.join(missing)}; run: chatlab db migrate --schema {schema}")


def _verify(args: argparse.Namespace, schema: str) -> int:
    from chatlab.db.client import ChatDB

    uri = _running_url(args)
    _require_migrated(uri, schema)
    with ChatDB(uri, schema) as db:
        checks = db.verify()
    for check in checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    failed = [c for c in checks if not c.passed]
    print(f"{len(checks) - len(failed)}/{len(checks)} checks passed")
    return 1 if failed else 0


def _status(args: argparse.Namespace, schema: str) -> int:
    from chatlab.db.migrate import applied_versions
    from chatlab.db.server import server_status

    status = server_status(args.data_dir)
    print(status.describe())
    if not status.running or status.uri is None:
        return 0
    applied = applied_versions(status.uri, schema)
    if not applied:
        print(f"schema {schema}: not migrated")
        return 0
    print(f"schema {schema}: migrations {', '.join(f'{v:03d}' for v in sorted(applied))}")
    from chatlab.db.client import ChatDB

    with ChatDB(status.uri, schema) as db:
        for row in db.chat_state_summary():
            print(f"  {row['chat_state']:<24} {row['chat_count']:>8} chats")
        queue = db.get_assignment_queue_status()
    print(f"  online operators {queue['online_operators']}, with free capacity {queue['operators_with_capacity']}, "
          f"longest wait {queue['longest_wait_seconds'] or 0:.1f} s")
    return 0


def _url(args: argparse.Namespace, schema: str) -> int:
    print(_with_schema(_running_url(args), schema))
    return 0


def _down(args: argparse.Namespace, schema: str) -> int:
    from chatlab.db.server import URL_ENV, data_dir, stop_server

    if os.environ.get(URL_ENV):
        print(f"${URL_ENV} is set: the external server is not managed by chatlab; nothing stopped")
        return 0
    if stop_server(args.data_dir):
        print(f"embedded server stopped (data kept in {data_dir(args.data_dir)})")
    else:
        print("embedded server was not running")
    return 0
