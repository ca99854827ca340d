"""The outside targets' SQL (loadtest/targets/seed_prefix, loadtest/targets/seed_fix).

Each target is built from nothing in a fresh schema of the session's real PostgreSQL: the
files run in file-name order, each in its own transaction, each as one multi-statement
string, with search_path set to the schema (the way the lab loads a target).  Then:

1. the seed README's manual test flow (steps 1-5): seed_fix never hands operator A the
   chat A just answered; seed_prefix does (the seed's bug);
2. capacity: max_chats is a ceiling, an offline operator gets nothing;
3. every function of the common interface (and seed_fix's monitoring functions) exists
   with its signature, pins search_path, and works;
4. the history: one chat_assignments row per hold, released rows carry a reason,
   messages carry sender_type / sender_id;
5. 8 concurrent operators, 20 waiting chats, 5 rounds: no chat held twice, no operator
   above max_chats.

psycopg is imported inside the fixtures/tests (see tests/conftest.py).
"""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TARGETS_DIR = Path(__file__).resolve().parents[1] / "loadtest" / "targets"
TARGET_NAMES = ("seed_prefix", "seed_fix")

#: name -> (pg_get_function_arguments, pg_get_function_result), both targets.
COMMON_SIGNATURES = {
    "send_real_user_message": ("p_real_user_id uuid, p_body text, p_chat_id uuid DEFAULT NULL::uuid", "uuid"),
    "assign_chat_to_operator": ("p_operator_id uuid", "uuid"),
    "send_operator_message": ("p_operator_id uuid, p_chat_id uuid, p_body text", "uuid"),
    "unassign_chat": ("p_operator_id uuid, p_chat_id uuid", "void"),
    "end_chat": ("p_chat_id uuid", "void"),
    "set_operator_online": ("p_operator_id uuid, p_online boolean", "integer"),
    "release_idle_operator_chats": ("p_idle_after_seconds double precision", "integer"),
    "release_stuck_chats": ("p_stuck_after_seconds double precision", "integer"),
}
#: seed_fix only (migration 016); None = a RETURNS TABLE (...) result, checked by prefix.
FIX_SIGNATURES = {
    "get_assignment_queue_status": ("", "TABLE("),
    "detect_stuck_chats": ("p_hours numeric", "TABLE("),
    "release_and_reassign_chat": ("p_chat_id uuid, p_reason text", "boolean"),
    "verify_chat_state_management": ("", "TABLE("),
}
RELEASE_REASONS = {
    "operator_reply",
    "unassign",
    "end",
    "operator_offline",
    "idle",
    "stuck",
    "manual_fix",
    "manual",
}


def sql_files(name: str) -> list[Path]:
    """The target's SQL files in the order its target file lists them (the one source of truth)."""
    from loadtest.target import load_target

    return list(load_target(name).schema_files)


class Target:
    """One target built in its own schema, with a small client on one connection."""

    def __init__(self, name: str, schema: str, uri: str) -> None:
        self.name = name
        self.schema = schema
        self.uri = uri
        self.conn = self.connect()

    @property
    def fix(self) -> bool:
        return self.name == "seed_fix"

    def connect(self) -> Any:
        import psycopg
        from psycopg import sql
        from psycopg.rows import dict_row

        conn = psycopg.connect(self.uri, autocommit=True, row_factory=dict_row)
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        return conn

    # -- queries ------------------------------------------------------------------
    def rows(self, query: str, params: tuple = ()) -> list[dict]:
        return self.conn.execute(query, params).fetchall()

    def val(self, query: str, params: tuple = ()) -> Any:
        row = self.conn.execute(query, params).fetchone()
        return None if row is None else next(iter(row.values()))

    # -- the system's operations -------------------------------------------------
    def operator(self, name: str, max_chats: int = 1, online: bool = True) -> uuid.UUID:
        return self.val(
            "INSERT INTO operators (name, max_chats, is_online) VALUES (%s, %s, %s) RETURNING id",
            (name, max_chats, online),
        )

    def user_says(self, user: uuid.UUID, body: str, chat: uuid.UUID | None = None) -> uuid.UUID:
        return self.val("SELECT send_real_user_message(%s, %s, %s)", (user, body, chat))

    def assign(self, op: uuid.UUID) -> uuid.UUID | None:
        return self.val("SELECT assign_chat_to_operator(%s)", (op,))

    def reply(self, op: uuid.UUID, chat: uuid.UUID, body: str = "operator answer") -> uuid.UUID:
        return self.val("SELECT send_operator_message(%s, %s, %s)", (op, chat, body))

    def chat(self, chat: uuid.UUID) -> dict:
        return self.rows("SELECT * FROM chats WHERE id = %s", (chat,))[0]

    def assignments(self, chat: uuid.UUID) -> list[dict]:
        return self.rows("SELECT * FROM chat_assignments WHERE chat_id = %s ORDER BY assigned_at, id", (chat,))

    def close(self) -> None:
        self.conn.close()


def build(uri: str, name: str, files: list[Path] | None = None) -> Target:
    import psycopg
    from psycopg import sql

    schema = f"target_{name}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        for path in sql_files(name) if files is None else files:
            with conn.transaction():
                conn.execute(path.read_text())  # one multi-statement string per file
    return Target(name, schema, uri)


def drop(target: Target) -> None:
    import psycopg
    from psycopg import sql

    target.close()
    with psycopg.connect(target.uri, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(target.schema)))


@pytest.fixture(params=TARGET_NAMES)
def target(request: pytest.FixtureRequest, pg_uri: str) -> Iterator[Target]:
    t = build(pg_uri, request.param)
    try:
        yield t
    finally:
        drop(t)


def check_history(t: Target) -> None:
    """Invariants of chat_assignments and messages that hold after any sequence of calls."""
    rows = t.rows("SELECT * FROM chat_assignments ORDER BY chat_id, assigned_at, id")
    by_chat: dict[uuid.UUID, list[dict]] = {}
    for row in rows:
        by_chat.setdefault(row["chat_id"], []).append(row)
        if row["released_at"] is None:
            assert row["release_reason"] is None, row
        else:
            assert row["release_reason"] in RELEASE_REASONS, row
            assert row["released_at"] >= row["assigned_at"], row
    for chat_id, holds in by_chat.items():
        assert sum(h["released_at"] is None for h in holds) <= 1, holds
        for prev, nxt in itertools.pairwise(holds):  # holds of one chat never overlap
            assert prev["released_at"] is not None and prev["released_at"] <= nxt["assigned_at"], holds
        chat = t.chat(chat_id)
        open_holds = [h for h in holds if h["released_at"] is None]
        assert chat["assigned_operator_id"] == (open_holds[0]["operator_id"] if open_holds else None)
    # Every held chat has its open row.
    assert (
        t.val(
            "SELECT count(*) FROM chats c WHERE c.assigned_operator_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM chat_assignments a WHERE a.chat_id = c.id AND a.released_at IS NULL)"
        )
        == 0
    )
    # Messages: user messages from the chat's user, operator messages from an operator.
    assert (
        t.val(
            "SELECT count(*) FROM messages m JOIN chats c ON c.id = m.chat_id "
            "WHERE m.sender_type = 'real_user' AND m.sender_id <> c.real_user_id"
        )
        == 0
    )
    assert (
        t.val(
            "SELECT count(*) FROM messages m WHERE m.sender_type = 'operator' "
            "AND NOT EXISTS (SELECT 1 FROM operators o WHERE o.id = m.sender_id)"
        )
        == 0
    )
    if t.fix:
        failed = [r for r in t.rows("SELECT * FROM verify_chat_state_management()") if not r["passed"]]
        assert failed == []


# -- 1. the seed README's manual test flow -----------------------------------------------


def test_manual_test_flow(target: Target) -> None:
    t = target
    op_a, op_b = t.operator("A"), t.operator("B")
    user1, user2 = uuid.uuid4(), uuid.uuid4()

    # 1. Real user sends a message.
    c1 = t.user_says(user1, "hello")
    if t.fix:
        assert t.chat(c1)["chat_state"] == "waiting_assignment"

    # 2. Operator A gets the assignment.
    assert t.assign(op_a) == c1
    row = t.chat(c1)
    assert row["assigned_operator_id"] == op_a
    if t.fix:
        assert row["chat_state"] == "assigned"

    # 3. Operator A replies: the chat is unassigned, the hold released.
    t.reply(op_a, c1, "hi, how can I help?")
    row = t.chat(c1)
    assert row["assigned_operator_id"] is None
    [hold] = t.assignments(c1)
    assert hold["operator_id"] == op_a and hold["release_reason"] == "operator_reply"

    if not t.fix:
        # 4. The bug: A asks again and gets the SAME chat, though another chat waits.
        c2 = t.user_says(user2, "anyone there?")
        assert t.assign(op_a) == c1
        assert [h["operator_id"] for h in t.assignments(c1)] == [op_a, op_a]
        assert t.assign(op_b) == c2
        check_history(t)
        return

    assert row["chat_state"] == "waiting_real_user_reply"
    assert row["operator_replied_at"] is not None and row["last_operator_id"] == op_a

    # 4. A asks again: not c1 — NULL while nothing else waits, then a different chat.
    assert t.assign(op_a) is None
    assert t.assign(op_b) is None  # c1 waits for its user, not for an operator
    c2 = t.user_says(user2, "anyone there?")
    assert t.assign(op_a) == c2
    t.reply(op_a, c2)

    # 5. The real user replies: assignable again, but not to A (A answered it last).
    assert t.user_says(user1, "my order is late", c1) == c1
    assert t.chat(c1)["chat_state"] == "waiting_assignment"
    assert t.assign(op_a) is None
    assert t.assign(op_b) == c1
    # Only after another operator replied does it go back to A.
    t.reply(op_b, c1)
    t.user_says(user1, "still late", c1)
    assert t.assign(op_a) == c1
    assert [h["operator_id"] for h in t.assignments(c1)] == [op_a, op_b, op_a]
    check_history(t)


# -- 2. capacity ------------------------------------------------------------------------


def test_capacity_and_offline(target: Target) -> None:
    t = target
    op2 = t.operator("two", max_chats=2)
    off = t.operator("off", online=False)
    chats = [t.user_says(uuid.uuid4(), f"chat {i}") for i in range(3)]

    assert t.assign(off) is None
    got = [t.assign(op2) for _ in range(3)]
    assert got[:2] == chats[:2] and got[2] is None  # oldest first, then the ceiling
    assert t.val("SELECT count(*) FROM chats WHERE assigned_operator_id = %s", (op2,)) == 2
    assert t.assign(off) is None  # offline, even with a chat waiting

    # Going offline releases every held chat; offline gets nothing; back online works.
    assert t.val("SELECT set_operator_online(%s, false)", (op2,)) == 2
    assert t.val("SELECT count(*) FROM chats WHERE assigned_operator_id IS NOT NULL") == 0
    reasons = {h["release_reason"] for c in chats[:2] for h in t.assignments(c)}
    assert reasons == {"operator_offline"}
    if t.fix:
        assert {t.chat(c)["chat_state"] for c in chats} == {"waiting_assignment"}
    assert t.assign(op2) is None
    assert t.val("SELECT set_operator_online(%s, true)", (op2,)) == 0
    assert t.assign(op2) is not None
    check_history(t)


# -- 3. every function: signatures and one call each -------------------------------------


def test_signatures_and_pinned_search_path(target: Target) -> None:
    t = target
    rows = t.rows(
        "SELECT p.proname, pg_get_function_arguments(p.oid) AS args, "
        "pg_get_function_result(p.oid) AS result, p.proconfig "
        "FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace"
    )
    names = Counter(r["proname"] for r in rows)
    assert all(n == 1 for n in names.values()), names  # no overloads
    found = {r["proname"]: r for r in rows}
    expected = dict(COMMON_SIGNATURES, **(FIX_SIGNATURES if t.fix else {}))
    for name, (args, result) in expected.items():
        assert name in found, name
        assert found[name]["args"] == args, (name, found[name]["args"])
        assert found[name]["result"].startswith(result), (name, found[name]["result"])
    if not t.fix:
        assert not set(FIX_SIGNATURES) & set(found)
    for r in rows:  # every function resolves its tables in its own schema
        assert r["proconfig"] is not None and any(
            c.startswith("search_path=") and t.schema in c for c in r["proconfig"]
        ), r

    # Called from a session whose search_path is elsewhere, the functions still work.
    import psycopg
    from psycopg import sql

    with psycopg.connect(t.uri, autocommit=True) as other:
        other.execute("SET search_path TO public")
        op = t.operator("far away")
        chat = other.execute(
            sql.SQL("SELECT {}.send_real_user_message(%s, %s)").format(sql.Identifier(t.schema)),
            (uuid.uuid4(), "hello"),
        ).fetchone()[0]
        got = other.execute(
            sql.SQL("SELECT {}.assign_chat_to_operator(%s)").format(sql.Identifier(t.schema)), (op,)
        ).fetchone()[0]
        assert got == chat
    # The SQL files (comments aside) name no schema and set no search_path themselves.
    for path in sql_files(t.name):
        code = re.sub(r"--[^\n]*", "", path.read_text().lower())
        assert "public." not in code and not re.search(r"set\s+search_path\s+(to|=)", code), path


def test_every_function_once(target: Target) -> None:
    import psycopg

    t = target
    op_a, op_b = t.operator("A"), t.operator("B")
    user = uuid.uuid4()
    c = t.user_says(user, "hello")

    # Errors: unknown chat / someone else's chat / chat not held / unknown operator.
    with pytest.raises(psycopg.errors.NoDataFound):
        t.user_says(user, "x", uuid.uuid4())
    with pytest.raises(psycopg.errors.NoDataFound):
        t.user_says(uuid.uuid4(), "not my chat", c)
    with pytest.raises(psycopg.errors.NoDataFound):
        t.assign(uuid.uuid4())
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        t.reply(op_a, c)

    # unassign_chat
    assert t.assign(op_a) == c
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        t.reply(op_b, c)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        t.val("SELECT unassign_chat(%s, %s)", (op_b, c))
    t.val("SELECT unassign_chat(%s, %s)", (op_a, c))
    assert t.chat(c)["assigned_operator_id"] is None
    assert t.assignments(c)[-1]["release_reason"] == "unassign"
    if t.fix:
        row = t.chat(c)
        assert row["chat_state"] == "waiting_assignment" and row["last_operator_id"] == op_a
        assert row["waiting_since"] > row["created_at"]
        assert t.assign(op_a) is None
    else:
        assert t.assign(op_a) == c  # pre-fix: straight back
        t.val("SELECT unassign_chat(%s, %s)", (op_a, c))
    assert t.assign(op_b) == c

    # a user message to a held chat keeps it held
    t.user_says(user, "are you there?", c)
    assert t.chat(c)["assigned_operator_id"] == op_b
    if t.fix:
        assert t.chat(c)["chat_state"] == "assigned"

    # end_chat
    t.val("SELECT end_chat(%s)", (c,))
    row = t.chat(c)
    assert row["is_active"] is False and row["assigned_operator_id"] is None
    assert t.assignments(c)[-1]["release_reason"] == "end"
    if t.fix:
        assert row["chat_state"] == "completed"
    with pytest.raises(psycopg.errors.NoDataFound):
        t.val("SELECT end_chat(%s)", (c,))
    with pytest.raises(psycopg.errors.NoDataFound):
        t.user_says(user, "hello again", c)
    assert t.assign(op_a) is None  # a closed chat is never assignable

    # release_idle_operator_chats
    c2 = t.user_says(uuid.uuid4(), "idle test")
    assert t.assign(op_a) == c2
    assert t.val("SELECT release_idle_operator_chats(3600)") == 0
    assert t.val("SELECT release_idle_operator_chats(0)") == 1
    assert t.assignments(c2)[-1]["release_reason"] == "idle"
    if t.fix:
        row = t.chat(c2)
        assert row["chat_state"] == "waiting_assignment" and row["last_operator_id"] == op_a

    # release_stuck_chats
    assert t.assign(op_b) == c2
    assert t.val("SELECT release_stuck_chats(3600)") == 0
    if t.fix:
        [stuck] = t.rows("SELECT * FROM detect_stuck_chats(0)")
        assert stuck["chat_id"] == c2 and stuck["issue"] == "held_too_long"
        assert stuck["assigned_operator_id"] == op_b and stuck["hours_held"] >= 0
        assert t.rows("SELECT * FROM detect_stuck_chats(1)") == []
    assert t.val("SELECT release_stuck_chats(0)") == 1
    assert t.assignments(c2)[-1]["release_reason"] == "stuck"
    assert t.chat(c2)["assigned_operator_id"] is None
    assert t.val("SELECT release_stuck_chats(0)") == 0

    if t.fix:
        # release_and_reassign_chat, get_assignment_queue_status, chat_state_summary
        assert t.chat(c2)["last_operator_id"] == op_b
        assert t.assign(op_a) == c2
        assert t.val("SELECT release_and_reassign_chat(%s, 'manual_fix')", (c2,)) is True
        assert t.assignments(c2)[-1]["release_reason"] == "manual_fix"
        assert t.val("SELECT release_and_reassign_chat(%s, 'manual_fix')", (c2,)) is False
        with pytest.raises(psycopg.errors.NoDataFound):
            t.val("SELECT release_and_reassign_chat(%s, 'manual_fix')", (c,))
        assert t.assign(op_b) == c2
        c3 = t.user_says(uuid.uuid4(), "queue")
        [status] = t.rows("SELECT * FROM get_assignment_queue_status()")
        assert status["waiting_assignment_count"] == 1 and status["assigned_count"] == 1
        assert status["completed_count"] == 1 and status["waiting_real_user_reply_count"] == 0
        assert status["oldest_waiting_since"] == t.chat(c3)["waiting_since"]
        assert status["longest_wait_seconds"] >= 0
        assert status["online_operators"] == 2 and status["available_operators"] == 1
        assert status["free_slots"] == 1
        summary = {r["chat_state"]: r["chat_count"] for r in t.rows("SELECT * FROM chat_state_summary")}
        assert summary == {"waiting_assignment": 1, "assigned": 1, "waiting_real_user_reply": 0, "completed": 1}
        checks = t.rows("SELECT * FROM verify_chat_state_management()")
        assert len(checks) >= 10 and all(r["passed"] for r in checks), checks
    check_history(t)


# -- 4. history rows -------------------------------------------------------------------


def test_history_rows(target: Target) -> None:
    t = target
    op_a, op_b = t.operator("A", max_chats=2), t.operator("B")
    users = [uuid.uuid4() for _ in range(3)]
    chats = [t.user_says(u, "first") for u in users]
    holds = 0
    for op in (op_a, op_a, op_b):
        assert t.assign(op) is not None
        holds += 1
    for chat in chats:
        holder = t.chat(chat)["assigned_operator_id"]
        t.reply(holder, chat, "answer")
        t.user_says(t.chat(chat)["real_user_id"], "second", chat)
    for _ in range(3):  # fix: B may take only A's two chats; pre-fix: the oldest, 3 times
        got = t.assign(op_b)
        if got is None:
            break
        holds += 1
        t.reply(op_b, got)
    assert holds == (5 if t.fix else 6)
    assert t.val("SELECT count(*) FROM chat_assignments") == holds
    assert t.val("SELECT count(*) FROM chat_assignments WHERE released_at IS NULL") == 0
    assert t.val("SELECT count(*) FROM chat_assignments WHERE release_reason IS NULL") == 0
    msgs = t.rows("SELECT * FROM messages ORDER BY created_at, id")
    assert len(msgs) == 3 + 3 + 3 + (holds - 3)
    user_of = {c: t.chat(c)["real_user_id"] for c in chats}
    for m in msgs:
        assert m["sender_type"] in ("real_user", "operator")
        if m["sender_type"] == "real_user":
            assert m["sender_id"] == user_of[m["chat_id"]]
        else:
            assert m["sender_id"] in (op_a, op_b)
    # Operator messages were written while the sender held the chat.
    for m in msgs:
        if m["sender_type"] == "operator":
            assert (
                t.val(
                    "SELECT count(*) FROM chat_assignments WHERE chat_id = %s AND operator_id = %s "
                    "AND assigned_at <= %s AND released_at = %s",
                    (m["chat_id"], m["sender_id"], m["created_at"], m["created_at"]),
                )
                == 1
            )
    check_history(t)


def test_fix_migration_backfills_prefix_rows(pg_uri: str) -> None:
    """014 on top of pre-fix rows: states and last_operator_id come from the old columns."""
    files = sql_files("seed_fix")
    t = build(pg_uri, "seed_fix", files[:1])
    try:
        op = t.operator("A")
        user = uuid.uuid4()
        replied, waiting, held, closed = (
            t.val("INSERT INTO chats (real_user_id) VALUES (%s) RETURNING id", (user,)) for _ in range(4)
        )
        for chat in (replied, waiting, held, closed):
            t.val(
                "INSERT INTO messages (chat_id, sender_type, sender_id, body) "
                "VALUES (%s, 'real_user', %s, 'q') RETURNING id",
                (chat, user),
            )
        t.val(
            "INSERT INTO chat_assignments (chat_id, operator_id, assigned_at, released_at, release_reason) "
            "VALUES (%s, %s, now(), now(), 'operator_reply') RETURNING id",
            (replied, op),
        )
        t.val(
            "INSERT INTO messages (chat_id, sender_type, sender_id, body, created_at) "
            "VALUES (%s, 'operator', %s, 'a', clock_timestamp()) RETURNING id",
            (replied, op),
        )
        t.val("UPDATE chats SET assigned_operator_id = %s WHERE id = %s RETURNING id", (op, held))
        t.val(
            "INSERT INTO chat_assignments (chat_id, operator_id, assigned_at) VALUES (%s, %s, now()) RETURNING id",
            (held, op),
        )
        t.val("UPDATE chats SET is_active = false WHERE id = %s RETURNING id", (closed,))
        import psycopg
        from psycopg import sql

        with psycopg.connect(pg_uri, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(t.schema)))
            for path in files[1:]:
                with conn.transaction():
                    conn.execute(path.read_text())
        states = {c: t.chat(c)["chat_state"] for c in (replied, waiting, held, closed)}
        assert states == {
            replied: "waiting_real_user_reply",
            waiting: "waiting_assignment",
            held: "assigned",
            closed: "completed",
        }
        assert t.chat(replied)["last_operator_id"] == op
        assert t.chat(waiting)["waiting_since"] is not None
        assert all(r["passed"] for r in t.rows("SELECT * FROM verify_chat_state_management()"))
        assert t.assign(op) is None  # A holds its one chat
    finally:
        drop(t)


# -- 5. concurrency ----------------------------------------------------------------------


def test_concurrent_assignment(target: Target) -> None:
    t = target
    n_ops, n_chats, rounds, max_chats, calls = 8, 20, 5, 2, 3
    ops = [t.operator(f"op{i}", max_chats=max_chats) for i in range(n_ops)]
    for i in range(n_chats):
        t.user_says(uuid.uuid4(), f"waiting {i}")
    conns = [t.connect() for _ in ops]
    barrier = threading.Barrier(n_ops)
    results: dict[int, list] = {}
    errors: list[Exception] = []

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = [
                conns[i].execute("SELECT assign_chat_to_operator(%s) AS c", (ops[i],)).fetchone()["c"]
                for _ in range(calls)
            ]
        except Exception as exc:  # noqa: BLE001 (reported by the main thread)
            errors.append(exc)

    try:
        for rnd in range(rounds):
            results.clear()
            threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_ops)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(timeout=60)
            assert not errors, errors
            got = [c for i in range(n_ops) for c in results[i] if c is not None]
            assert len(got) == len(set(got)), f"round {rnd}: a chat was handed out twice"
            for i in range(n_ops):  # each operator filled up exactly to max_chats
                assert results[i][max_chats:] == [None] * (calls - max_chats), (rnd, results[i])
                assert None not in results[i][:max_chats], (rnd, results[i])
            assert (
                t.val(
                    "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM chat_assignments "
                    "WHERE released_at IS NULL GROUP BY chat_id) s"
                )
                <= 1
            )
            assert (
                t.val(
                    "SELECT count(*) FROM operators o WHERE (SELECT count(*) FROM chats c "
                    "WHERE c.assigned_operator_id = o.id AND c.is_active) > o.max_chats"
                )
                == 0
            )
            # Next round: every holder answers, every user answers back.
            for row in t.rows(
                "SELECT id, assigned_operator_id, real_user_id FROM chats WHERE assigned_operator_id IS NOT NULL"
            ):
                t.reply(row["assigned_operator_id"], row["id"])
                t.user_says(row["real_user_id"], "and again", row["id"])
        assert t.val("SELECT count(*) FROM chat_assignments") == rounds * n_ops * max_chats
        check_history(t)
    finally:
        for conn in conns:
            conn.close()


def test_concurrent_requests_of_one_operator(target: Target) -> None:
    """Several tabs of one operator ask at once: the operator-row lock keeps max_chats."""
    t = target
    n_threads, rounds, max_chats = 6, 6, 2
    op = t.operator("many tabs", max_chats=max_chats)
    for i in range(n_threads + 2):
        t.user_says(uuid.uuid4(), f"waiting {i}")
    conns = [t.connect() for _ in range(n_threads)]
    barrier = threading.Barrier(n_threads)
    got: list = []
    errors: list[Exception] = []

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            got.append(conns[i].execute("SELECT assign_chat_to_operator(%s) AS c", (op,)).fetchone()["c"])
        except Exception as exc:  # noqa: BLE001 (reported by the main thread)
            errors.append(exc)

    try:
        for rnd in range(rounds):
            got.clear()
            threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(timeout=60)
            assert not errors, errors
            assert sum(c is not None for c in got) == max_chats, (rnd, got)
            assert t.val("SELECT count(*) FROM chats WHERE assigned_operator_id = %s", (op,)) == max_chats
            for c in got:
                if c is not None:
                    t.val("SELECT end_chat(%s)", (c,))
            for _ in range(max_chats):
                t.user_says(uuid.uuid4(), "next")
        check_history(t)
    finally:
        for conn in conns:
            conn.close()
