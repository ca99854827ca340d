"""Least privilege and search_path pinning, as an application role would meet them."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from chatlab.db.client import ChatDB
from chatlab.db.errors import NotYourChat


@pytest.fixture
def app_conn(pg_uri, fresh_schema, db):
    """A connection as a fresh LOGIN member of chatlab_app, search_path on the test schema."""
    role = f"app_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_uri, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE chatlab_app").format(sql.Identifier(role)))
    try:
        with psycopg.connect(pg_uri, user=role, autocommit=True) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(fresh_schema)))
            yield conn
    finally:
        with psycopg.connect(pg_uri, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _sqlstate(conn, query: str, params=()) -> str | None:
    try:
        conn.execute(query.encode(), params)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def test_app_role_calls_the_api_but_cannot_touch_tables(app_conn, db: ChatDB):
    op = app_conn.execute("SELECT create_operator('ann')").fetchone()[0]
    chat = app_conn.execute("SELECT real_user_message(5, 'hi')").fetchone()[0]
    assert app_conn.execute("SELECT assign_chat_to_operator(%s)", (op,)).fetchone()[0] == chat
    assert app_conn.execute("SELECT chat_count FROM chat_state_summary WHERE chat_state = 'assigned'").fetchone()[0] == 1
    denied = [
        "SELECT * FROM chats",
        "SELECT body FROM messages",
        "UPDATE chats SET last_operator_id = NULL",
        "DELETE FROM chat_assignments",
        "INSERT INTO chat_events (at, event, operator_id) VALUES (now(), 'operator_online', 1)",
        "SELECT _chatlab_announce('assign', true)",
        "SELECT count(*) FROM chat_api_functions()",
    ]
    for query in denied:
        assert _sqlstate(app_conn, query) == "42501", query  # insufficient_privilege
    assert db.state_of(chat) == "assigned" and db.chat(chat)["last_operator_id"] is None


def test_temp_objects_cannot_hijack_the_functions(app_conn, db: ChatDB):
    """search_path is pinned (schema, then pg_temp): a caller's temp 'chats' is never used."""
    op = app_conn.execute("SELECT create_operator('ann')").fetchone()[0]
    chat = app_conn.execute("SELECT real_user_message(5, 'hi')").fetchone()[0]
    app_conn.execute("CREATE TEMP TABLE chats (id bigint, chat_state text, waiting_since timestamptz, "
                     "last_operator_id bigint, real_user_id bigint, assigned_operator_id bigint, is_active bool)")
    app_conn.execute("INSERT INTO chats VALUES (424242, 'waiting_assignment', '2000-01-01', NULL, 1, NULL, true)")
    app_conn.execute("SET search_path TO pg_temp, " + db.schema)  # try to put temp objects first
    assert app_conn.execute(
        sql.SQL("SELECT {}.assign_chat_to_operator(%s)").format(sql.Identifier(db.schema)), (op,)
    ).fetchone()[0] == chat


def test_operator_reads_only_chats_it_holds(db: ChatDB):
    a, b = db.create_operator("a"), db.create_operator("b")
    chat = db.real_user_message(1, "secret question")
    assert db.assign_chat_to_operator(a) == chat
    assert [m["body"] for m in db.operator_chat_messages(a, chat)] == ["secret question"]
    with pytest.raises(NotYourChat, match="cannot read chat"):
        db.operator_chat_messages(b, chat)
    db.operator_message(a, chat, "answer")
    with pytest.raises(NotYourChat):  # after replying, a no longer holds it either
        db.operator_chat_messages(a, chat)


def test_verify_reports_the_access_checks(db: ChatDB):
    names = {c.name: c.passed for c in db.verify()}
    assert names["no function executable by PUBLIC"] and names["no table readable or writable by PUBLIC"]
    assert names["API functions run with definer rights and a pinned search_path"]
    db.conn.execute("GRANT SELECT ON chats TO PUBLIC")
    assert {c.name: c.passed for c in db.verify()}["no table readable or writable by PUBLIC"] is False
