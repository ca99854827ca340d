"""Security promises of issue 6, checked on a migrated schema and on the source tree.

- every function of the schema pins its search_path (SECURITY DEFINER ones must: a caller
  could otherwise shadow a table with a temp object and run code with the owner's rights);
- the application role ``chatlab_app`` (migration 017) can call the API but cannot read or
  write the tables, and an operator cannot read or act on a chat that is not theirs;
- no Python module builds SQL text by f-string, concatenation or formatting at an
  ``execute`` call: values go as parameters, identifiers through ``psycopg.sql``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_function_pins_search_path(db) -> None:
    rows = db._rows(
        "SELECT p.proname, p.prosecdef, coalesce(array_to_string(p.proconfig, ','), '') "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = current_schema() AND p.prokind = 'f'")
    assert len(rows) >= 20, rows
    definer = [name for name, secdef, _ in rows if secdef]
    unpinned = [name for name, _, config in rows if "search_path=" not in config]
    assert definer, "017 should run the API functions with definer rights"
    assert unpinned == [], f"functions without a pinned search_path: {unpinned}"
    print(f"\n[security] {len(rows)} functions, {len(definer)} SECURITY DEFINER, all pin search_path")


def test_app_role_calls_the_api_but_cannot_touch_tables(db) -> None:
    from chatlab.db.errors import DatabaseError, NotYourChat

    a, b = db.create_operator("a"), db.create_operator("b")
    chat = db.real_user_message(1, "secret question")
    assert db.assign_chat_to_operator(a) == chat
    if not db._rows("SELECT 1 FROM pg_roles WHERE rolname = 'chatlab_app'"):
        pytest.fail("role chatlab_app missing: migration 017 could not create it on this server")
    db._rows("SET ROLE chatlab_app")
    try:
        for table in ("chats", "messages", "operators", "chat_assignments"):
            with pytest.raises(DatabaseError, match="permission denied"):
                db._rows(f"SELECT * FROM {table}")  # noqa: S608 - constant table names, the point of the test
        with pytest.raises(DatabaseError, match="permission denied"):
            db._rows("UPDATE chats SET assigned_operator_id = %s", (b,))
        # the API works for the role ...
        assert [m[3] for m in db._rows("SELECT * FROM operator_chat_messages(%s, %s)", (a, chat))] == ["secret question"]
        # ... but not for someone else's chat: read, reply, unassign
        with pytest.raises(NotYourChat):
            db._rows("SELECT * FROM operator_chat_messages(%s, %s)", (b, chat))
        with pytest.raises(NotYourChat):
            db.operator_message(b, chat, "let me answer")
        with pytest.raises(NotYourChat):
            db.unassign_chat(b, chat)
    finally:
        db._rows("RESET ROLE")
    assert db.state_of(chat).value == "assigned"
    assert db.chat(chat)["assigned_operator_id"] == a


def _sql_built_from_strings(node: ast.AST) -> bool:
    """True for f"...", "..." + x, "..." % x and "...".format(...)."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return True
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str))


def test_no_python_module_builds_sql_text() -> None:
    offenders: list[str] = []
    calls = 0
    for path in sorted(p for d in ("sim", "chatlab", "loadtest") for p in (ROOT / d).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in {"execute", "executemany", "copy", "query", "_rows", "_scalar"}
                    and node.args):
                calls += 1
                if _sql_built_from_strings(node.args[0]):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert calls >= 20, calls  # the scan really saw the database calls
    assert offenders == [], f"SQL built from strings at: {offenders}"


def test_the_scan_would_catch_an_f_string() -> None:
    bad = ast.parse('cur.execute(f"SELECT * FROM chats WHERE id = {chat_id}")').body[0].value
    good = ast.parse('cur.execute("SELECT * FROM chats WHERE id = %s", (chat_id,))').body[0].value
    assert _sql_built_from_strings(bad.args[0]) and not _sql_built_from_strings(good.args[0])
