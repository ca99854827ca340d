"""``chatlab db`` end to end: a persistent embedded server in a temp data dir, via subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["CHATLAB_DATA_DIR"] = str(data)
    return env


def _chatlab(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatlab.cli", "db", *args], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def cli_env():
    # Not under pytest's tmp_path: as root, PostgreSQL runs as user 'pgserver', which needs
    # to traverse the path, and pytest keeps /tmp/pytest-of-<user> private (0700).
    root = Path(tempfile.mkdtemp(prefix="chatlab-cli-"))
    env = _env(root / "lab")
    (root / "lab").mkdir()
    try:
        yield env
    finally:
        _chatlab(env, "down")  # always stop the server, even when a test failed
        shutil.rmtree(root, ignore_errors=True)


def test_up_url_status_migrate_verify_down(cli_env):
    import psycopg

    up = _chatlab(cli_env, "up")
    assert up.returncode == 0, up.stderr
    assert "embedded server running" in up.stdout and "applied migrations 001" in up.stdout

    url = _chatlab(cli_env, "url")
    assert url.returncode == 0
    uri = url.stdout.strip()
    assert uri.startswith("postgresql://") and cli_env["CHATLAB_DATA_DIR"] in uri

    # the server survives between commands: a later command connects to the same one
    with psycopg.connect(uri) as conn:
        assert conn.execute("SELECT count(*) FROM public.chat_transitions").fetchone()[0] == 12

    mig = _chatlab(cli_env, "migrate", "--schema", "lab")
    assert mig.returncode == 0 and "applied migrations 001, 014, 015, 016" in mig.stdout
    again = _chatlab(cli_env, "migrate", "--schema", "lab")
    assert again.returncode == 0 and "up to date" in again.stdout

    # `psql "$(chatlab db url --schema lab)"` lands in the lab schema
    lab_uri = _chatlab(cli_env, "url", "--schema", "lab").stdout.strip()
    with psycopg.connect(lab_uri) as conn:
        assert conn.execute("SHOW search_path").fetchone()[0] == "lab"

    status = _chatlab(cli_env, "status", "--schema", "lab")
    assert status.returncode == 0 and "migrations 001, 014, 015, 016" in status.stdout
    assert "waiting_assignment" in status.stdout

    never = _chatlab(cli_env, "verify", "--schema", "never_migrated")
    assert never.returncode == 2 and "lacks migrations" in never.stderr and len(never.stderr.strip().splitlines()) == 1

    verify = _chatlab(cli_env, "verify", "--schema", "lab")
    assert verify.returncode == 0, verify.stdout
    assert verify.stdout.count("PASS") >= 10 and "FAIL" not in verify.stdout

    # break history behind the functions' back: verify must name the failing check and exit 1
    with psycopg.connect(lab_uri, autocommit=True) as conn:
        op = conn.execute("SELECT create_operator('x')").fetchone()[0]
        chat = conn.execute("SELECT real_user_message(1, 'hi')").fetchone()[0]
        conn.execute("INSERT INTO chat_assignments (chat_id, operator_id, assigned_at, released_at, release_reason) "
                     "VALUES (%s, %s, '2026-01-01', '2026-01-03', 'x'), (%s, %s, '2026-01-02', '2026-01-04', 'y')",
                     (chat, op, chat, op))
    broken = _chatlab(cli_env, "verify", "--schema", "lab")
    assert broken.returncode == 1
    assert "FAIL  no overlapping assignments" in broken.stdout

    down = _chatlab(cli_env, "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert "not running" in _chatlab(cli_env, "status").stdout
    assert "was not running" in _chatlab(cli_env, "down").stdout


@pytest.mark.parametrize(("args", "message"), [
    (["verify"], "no server is running"),  # verify / url never start the server they would report on
    (["url"], "no server is running"),
    (["migrate", "--schema", "Bad-Name"], "invalid schema name"),
    (["url", "--schema", "pg_catalog"], "invalid schema name"),
])
def test_user_mistakes_are_one_line_errors(cli_env, args, message):
    out = _chatlab(cli_env, *args)
    assert not (Path(cli_env["CHATLAB_DATA_DIR"]) / "pg").exists(), "a mistake started a server"
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_unreachable_database_url_is_a_clear_error(tmp_path):
    env = _env(tmp_path)
    env["DATABASE_URL"] = f"postgresql://nobody@/nodb?host={tmp_path}/nosocket&connect_timeout=2"
    out = _chatlab(env, "migrate")
    assert out.returncode == 2 and "cannot connect" in out.stderr and "Traceback" not in out.stderr
    assert "not managed by chatlab" in _chatlab(env, "down").stdout
