"""Bring your own target: a TOML file mapping each flow of the load test to the target's own SQL call.

Why: a CI pipeline must gate *its* ``assign_chat_to_operator`` in *its* migrations, not the
lab's.  A target file says how to build the system in a fresh schema (its SQL files, in
order) and which statement plays each flow (psycopg named parameters, e.g.
``SELECT assign_chat_to_operator(%(operator_id)s)``).  Ids may be the target's own UUID text:
with ``ids = "uuid"`` the lab passes operator *n* as ``uuid5(NAMESPACE, "operator-n")`` and
user *n* as ``uuid5(NAMESPACE, "user-n")``, and keeps the chat ids the target returns.  The
history is read from the seed's four tables (:mod:`chatlab.db.seedtables`), so any system
with the seed's tables can be measured.

=================  ===========================================  ======================================
flow               parameters                                   returns
=================  ===========================================  ======================================
create_operator    operator_id, name, max_chats                 -
new_user_message   user_id, body                                the new chat's id
user_reply         user_id, chat_id, body                       -
assign             operator_id                                  a chat id, or NULL
operator_reply     operator_id, chat_id, body                   -
end_chat           chat_id                                      -
chat_status        chat_id                                      (state, operator_replied_at,
                                                                last_user_message_at); state
                                                                ``completed`` / ``waiting_assignment``
                                                                / anything else
operator_inbox     operator_id                                  rows (is_online, chat_id, pending)
unassign           operator_id, chat_id                         - (optional)
online, offline    operator_id                                  - (optional)
touch              operator_id                                  - (optional: a heartbeat)
idle_detection     idle_after_seconds                           released count (optional)
stuck_release      stuck_after_seconds                          released count (optional)
=================  ===========================================  ======================================

A target may lack an optional flow: the load test then skips it (an operator that would
hand a chat back replies instead; no housekeeping job) and the report says so.  Every
mistake — an unknown flow, a parameter the flow does not have, a missing file, a statement
that fails when probed once inside a rolled-back transaction — is a :class:`TargetError`
naming the file and the flow.
"""

from __future__ import annotations

import re
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ChatLabError

TARGETS_DIR = Path(__file__).resolve().parent / "targets"
#: uuid5 namespace of the lab's ids in a UUID target (fixed: the same ids in every run)
NAMESPACE = uuid.UUID("6f1d2c7e-54a1-4c1e-9a53-1c5e1ab0c0de")

FLOWS: dict[str, tuple[str, ...]] = {
    "create_operator": ("operator_id", "name", "max_chats"),
    "new_user_message": ("user_id", "body"),
    "user_reply": ("user_id", "chat_id", "body"),
    "assign": ("operator_id",),
    "operator_reply": ("operator_id", "chat_id", "body"),
    "end_chat": ("chat_id",),
    "chat_status": ("chat_id",),
    "operator_inbox": ("operator_id",),
    "unassign": ("operator_id", "chat_id"),
    "online": ("operator_id",),
    "offline": ("operator_id",),
    "touch": ("operator_id",),
    "idle_detection": ("idle_after_seconds",),
    "stuck_release": ("stuck_after_seconds",),
}
REQUIRED: tuple[str, ...] = ("create_operator", "new_user_message", "user_reply", "assign", "operator_reply",
                             "end_chat", "chat_status", "operator_inbox")
_KEYS = ("name", "description", "schema_files", "ids", "flows")
_PARAM = re.compile(r"%\((\w+)\)s")


class TargetError(ChatLabError):
    """A target file that cannot be used (unknown flow, bad parameter, missing file, a failing probe)."""


@dataclass(frozen=True)
class Target:
    name: str
    path: Path
    description: str
    schema_files: tuple[Path, ...]
    ids: str  # "uuid" or "bigint"
    flows: Mapping[str, str] = field(default_factory=dict)

    @property
    def missing(self) -> tuple[str, ...]:
        """The optional flows this target does not have."""
        return tuple(f for f in FLOWS if f not in self.flows)

    def has(self, flow: str) -> bool:
        return flow in self.flows

    def statement(self, flow: str) -> bytes:
        return self.flows[flow].encode()

    # ids --------------------------------------------------------------------------------
    def operator_id(self, n: int) -> Any:
        return str(uuid.uuid5(NAMESPACE, f"operator-{n}")) if self.ids == "uuid" else int(n)

    def user_id(self, n: int) -> Any:
        return str(uuid.uuid5(NAMESPACE, f"user-{n}")) if self.ids == "uuid" else int(n)


def resolve_target_path(name_or_path: str | Path) -> Path:
    """A shipped target by name (``lab``, ``seed_fix``, ``seed_prefix``) or a path to a .toml file."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix != ".toml" and "/" not in text:
        path = TARGETS_DIR / f"{text}.toml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in TARGETS_DIR.glob("*.toml")))
        raise TargetError(f"--target: no target file {str(name_or_path)!r} (a .toml path, or one of: {shipped})")
    return path.resolve()


def load_target(name_or_path: str | Path) -> Target:
    path = resolve_target_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TargetError(f"{path}: not a readable TOML file ({exc})") from None
    for key in data:
        if key not in _KEYS:
            raise TargetError(f"{path}: unknown key {key!r}; expected {', '.join(_KEYS)}")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name):
        raise TargetError(f"{path}: name: expected 1-40 letters, digits, '_' or '-', got {name!r}")
    ids = data.get("ids", "bigint")
    if ids not in ("uuid", "bigint"):
        raise TargetError(f"{path}: ids: expected \"uuid\" or \"bigint\", got {ids!r}")
    files = data.get("schema_files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise TargetError(f"{path}: schema_files: expected a list of SQL file paths (relative to the file)")
    schema_files = []
    for f in files:
        full = (path.parent / f).resolve()
        if not full.is_file():
            raise TargetError(f"{path}: schema_files: no file {f!r} (looked for {full})")
        schema_files.append(full)
    flows = data.get("flows")
    if not isinstance(flows, dict):
        raise TargetError(f"{path}: [flows]: expected a table mapping each flow to its SQL statement")
    for flow, text in flows.items():
        if flow not in FLOWS:
            raise TargetError(f"{path}: flows.{flow}: unknown flow; the flows are {', '.join(FLOWS)}")
        if not isinstance(text, str) or not text.strip():
            raise TargetError(f"{path}: flows.{flow}: expected an SQL statement (text)")
        for param in _PARAM.findall(text):
            if param not in FLOWS[flow]:
                raise TargetError(f"{path}: flows.{flow}: unknown parameter %({param})s; this flow has "
                                  f"{', '.join(FLOWS[flow])}")
    for flow in REQUIRED:
        if flow not in flows:
            raise TargetError(f"{path}: flows.{flow}: missing (every target needs {', '.join(REQUIRED)})")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise TargetError(f"{path}: description: expected text")
    return Target(name, path, description, tuple(schema_files), ids, dict(flows))


def probe(target: Target, conninfo: str, schema: str) -> None:
    """Run every flow once inside a transaction that is rolled back: a failing call is named now,
    before Locust starts (one :class:`TargetError`), and the schema is left as it was."""
    import psycopg

    from chatlab.db.migrate import check_schema
    from chatlab.db.queries import query

    check_schema(schema)
    a, b, user = target.operator_id(10**9 + 1), target.operator_id(10**9 + 2), target.user_id(10**9 + 1)

    def call(conn: Any, flow: str, **params: Any) -> Any:
        if not target.has(flow):
            return None
        try:
            with conn.transaction():  # a savepoint: the error names the flow, the probe goes on no further
                rows = conn.execute(target.statement(flow), params)
                return rows.fetchall() if rows.description else None
        except psycopg.Error as exc:
            raise TargetError(f"{target.path}: flows.{flow} failed on a probe: {' '.join(str(exc).split())}") from None

    class Rollback(Exception):
        pass

    with psycopg.connect(conninfo, autocommit=True) as conn:
        try:
            with conn.transaction():
                conn.execute(query("set_local_search_path", schema=schema))
                for op, name in ((a, "probe-a"), (b, "probe-b")):
                    call(conn, "create_operator", operator_id=op, name=name, max_chats=2)
                    call(conn, "online", operator_id=op)
                got = call(conn, "new_user_message", user_id=user, body="probe")
                if not got or got[0][0] is None:
                    raise TargetError(f"{target.path}: flows.new_user_message returned no chat id on a probe")
                chat = got[0][0]
                taken = call(conn, "assign", operator_id=a)
                if not taken or taken[0][0] is None or str(taken[0][0]) != str(chat):
                    raise TargetError(f"{target.path}: flows.assign did not give an online operator the only "
                                      f"waiting chat on a probe (got {taken!r})")
                for flow, rows in (("chat_status", call(conn, "chat_status", chat_id=chat)),
                                   ("operator_inbox", call(conn, "operator_inbox", operator_id=a))):
                    if not rows:
                        raise TargetError(f"{target.path}: flows.{flow} returned no row on a probe")
                status = call(conn, "chat_status", chat_id=chat)
                if len(status[0]) != 3:
                    raise TargetError(f"{target.path}: flows.chat_status must return 3 columns (state, "
                                      f"operator_replied_at, last_user_message_at), got {len(status[0])}")
                inbox = call(conn, "operator_inbox", operator_id=a)
                if len(inbox[0]) != 3:
                    raise TargetError(f"{target.path}: flows.operator_inbox must return 3 columns (is_online, "
                                      f"chat_id, pending), got {len(inbox[0])}")
                call(conn, "touch", operator_id=a)
                call(conn, "operator_reply", operator_id=a, chat_id=chat, body="probe answer")
                call(conn, "user_reply", user_id=user, chat_id=chat, body="probe reply")
                again = call(conn, "assign", operator_id=b)
                if again and again[0][0] is not None and target.has("unassign"):
                    call(conn, "unassign", operator_id=b, chat_id=again[0][0])
                call(conn, "idle_detection", idle_after_seconds=1e9)
                call(conn, "stuck_release", stuck_after_seconds=1e9)
                call(conn, "end_chat", chat_id=chat)
                call(conn, "offline", operator_id=a)
                raise Rollback
        except Rollback:
            pass
