"""The seed's tables -> the event log, checked against the lab's own ``chat_events`` on a real database;
and every bad source or option of ``chatlab calibrate`` / ``chatlab db export``: one line, exit 2, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from chatlab.db.clock import EPOCH
from chatlab.db.history import read_event_log
from chatlab.db.seedlog import to_event_log
from chatlab.db.seedtables import SeedTablesError, export_csv, read_csv_dir, read_database

ROOT = Path(__file__).resolve().parents[1]


def chatlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chatlab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _history(db) -> None:  # noqa: ANN001
    """Every kind of row: replies, a hand-back, an idle and a stuck release, ends queued and held,
    and the pre-fix policy's premature re-assignment of a replied chat (a repeat)."""
    t = 0.0

    def at(dt: float) -> None:
        nonlocal t
        t += dt
        db.set_clock(t)

    at(0)
    a, b = db.create_operator("ann", max_chats=2), db.create_operator("bob", max_chats=2)
    c1 = db.real_user_message(101, "hi")
    at(1)
    c2 = db.real_user_message(102, "hello")
    at(2)
    assert db.assign_chat_to_operator(a) == c1
    at(3)
    db.operator_message(a, c1, "answer")
    at(4)
    assert db.assign_chat_to_operator(a, "legacy") == c1  # the seed's bug: the replied chat again
    at(5)
    db.real_user_message(101, "thanks", c1)
    at(6)
    db.operator_message(a, c1, "answer 2")
    at(7)
    assert db.assign_chat_to_operator(b) == c2
    at(8)
    db.unassign_chat(b, c2)
    at(9)
    assert db.assign_chat_to_operator(a) == c2
    at(400)
    assert db.release_idle_operator_chats(300) >= 1  # both were silent: both logged out, ann's chat released
    at(10)
    db.set_operator_online(b, True)
    assert db.assign_chat_to_operator(b) == c2
    at(20)
    db.release_and_reassign_chat(c2, "manual_fix")
    at(5)
    db.end_chat(c2, "abandoned")  # ended while queued
    at(1)
    db.real_user_message(101, "one more", c1)
    at(1)
    assert db.assign_chat_to_operator(b) == c1
    at(2)
    db.end_chat(c1, "resolved")  # ended while held
    at(1)
    db.real_user_message(103, "new")  # still open at the end
    db.set_clock(None)


def _chat_rows(log: pd.DataFrame) -> list[tuple]:
    rows = log[log["chat_id"].notna()]
    return [(int(r.chat_id), round(float(r.time), 3), str(r.event), str(r.from_state), str(r.to_state),
             None if pd.isna(r.operator_id) else int(r.operator_id))
            for r in rows.sort_values(["chat_id", "time"], kind="stable").itertuples()]


def test_the_seed_tables_tell_the_same_history_as_the_labs_own_event_table(db, pg_uri: str, tmp_path: Path) -> None:
    _history(db)
    truth = read_event_log(pg_uri, db.schema)
    rebuilt = to_event_log(read_database(pg_uri, db.schema), origin=pd.Timestamp(EPOCH))
    assert rebuilt.attrs["dropped_rows"] == 0
    assert _chat_rows(rebuilt) == _chat_rows(truth)
    assert (rebuilt["event"] == "assign").sum() == 6
    # through a CSV export: the same frame
    export_csv(pg_uri, db.schema, tmp_path / "csv")
    again = to_event_log(read_csv_dir(tmp_path / "csv"), origin=pd.Timestamp(EPOCH))
    pd.testing.assert_frame_equal(again, rebuilt)
    # the metrics see the pre-fix repeat and the premature assignment in it
    from chatlab.metrics import compute_metrics

    m = compute_metrics(rebuilt)
    assert m["assignment"]["repeat"] >= 1 and m["assignment"]["premature"] == 1


def _csv_source(tmp_path: Path, pg_uri: str, db) -> Path:  # noqa: ANN001
    _history(db)
    src = tmp_path / "src"
    export_csv(pg_uri, db.schema, src)
    return src


def test_a_missing_table_or_column_is_named(db, pg_uri: str, tmp_path: Path) -> None:
    src = _csv_source(tmp_path, pg_uri, db)
    (src / "messages.csv").unlink()
    with pytest.raises(SeedTablesError, match=r"no messages\.csv"):
        read_csv_dir(src)
    export_csv(pg_uri, db.schema, src)
    frame = pd.read_csv(src / "chat_assignments.csv").drop(columns=["release_reason"])
    frame.to_csv(src / "chat_assignments.csv", index=False)
    with pytest.raises(SeedTablesError, match=r"chat_assignments\.csv: no column 'release_reason'"):
        read_csv_dir(src)


def test_calibrate_refuses_bad_sources_and_options_in_one_line_and_writes_nothing(db, pg_uri: str,
                                                                                   tmp_path: Path) -> None:
    import psycopg
    from psycopg import sql

    src = _csv_source(tmp_path, pg_uri, db)
    out = tmp_path / "out.toml"
    report = tmp_path / "report"
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("operators", "chats", "messages", "chat_assignments"):
        (broken / f"{name}.csv").write_text((src / f"{name}.csv").read_text())
    pd.read_csv(src / "chats.csv").drop(columns=["created_at"]).to_csv(broken / "chats.csv", index=False)

    def variant(name: str, table: str, edit) -> Path:  # noqa: ANN001
        where = tmp_path / name
        where.mkdir()
        for t in ("operators", "chats", "messages", "chat_assignments"):
            (where / f"{t}.csv").write_text((src / f"{t}.csv").read_text())
        edit(pd.read_csv(src / f"{table}.csv", dtype=str)).to_csv(where / f"{table}.csv", index=False)
        return where

    half_cap = variant("half_cap", "operators", lambda f: f.assign(max_chats="2.5"))
    no_op = variant("no_op", "chat_assignments", lambda f: f.assign(operator_id=[None] + list(f["operator_id"][1:])))
    bad_time = variant("bad_time", "messages", lambda f: f.assign(created_at="yesterday"))
    bad_kind = variant("bad_kind", "messages", lambda f: f.assign(sender_type="bot"))
    with psycopg.connect(pg_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {s}").format(s=sql.Identifier(db.schema + "_half")))
        conn.execute(sql.SQL("CREATE TABLE {s}.operators (id bigint)").format(s=sql.Identifier(db.schema + "_half")))
    cases = [
        ((str(broken), "--out", str(out)), "chats.csv: no column 'created_at'"),
        ((str(tmp_path / "nowhere"), "--out", str(out)), "not a directory of CSV exports"),
        ((str(half_cap), "--out", str(out)), "'max_chats' must be a whole number >= 1, got '2.5'"),
        ((str(no_op), "--out", str(out)), "column 'operator_id' has an empty value in row 2"),
        ((str(bad_time), "--out", str(out)), "column 'created_at' is not a timestamp"),
        ((str(bad_kind), "--out", str(out)), "'sender_type' must be 'real_user' or 'operator', got 'bot'"),
        ((str(src), "--out", str(src / "chats.csv" / "x.toml")), "--out: cannot write under"),
        ((pg_uri, "--schema", db.schema + "_half", "--out", str(out)), "no table 'chats'"),
        ((str(src), "--out", str(out), "--since", "2030-01-01"), "no chats opened in the period"),
        ((str(src), "--out", str(out), "--since", "yesterday-ish"), "--since: expected a timestamp"),
        ((str(src), "--out", str(out), "--since", "2026-02-01", "--until", "2026-01-01"), "--until"),
        ((str(src), "--out", str(tmp_path / "out.txt")), "--out: expected a .toml file"),
        ((str(src), "--out", str(out), "--time-scale", "0"), "--time-scale: expected a number > 0"),
        ((str(src), "--out", str(out), "--replications", "1"), "--replications: expected 2..100"),
        ((pg_uri, "--schema", "Bad-Name", "--out", str(out)), "invalid schema name"),
    ]
    try:
        for args, message in cases:
            proc = chatlab("calibrate", *args, "--report", str(report), "--no-progress")
            assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, (args, proc.stderr)
            assert not out.exists() and not report.exists() and not (tmp_path / "out.txt").exists()
    finally:
        with psycopg.connect(pg_uri, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {s} CASCADE").format(s=sql.Identifier(db.schema + "_half")))


def test_db_export_names_a_missing_table_and_writes_nothing(pg_uri: str, tmp_path: Path) -> None:
    import psycopg
    from psycopg import sql

    schema = "export_half_" + os.urandom(4).hex()
    with psycopg.connect(pg_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {s}").format(s=sql.Identifier(schema)))
    try:
        env = {**os.environ, "DATABASE_URL": pg_uri, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-m", "chatlab.cli", "db", "export", "--schema", schema,
                               str(tmp_path / "x")], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 2 and "no table 'operators'" in proc.stderr and len(proc.stderr.splitlines()) == 1
        assert not (tmp_path / "x").exists()
        proc = subprocess.run([sys.executable, "-m", "chatlab.cli", "db", "export", "--schema", schema], cwd=ROOT,
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 2 and "export: expected a directory" in proc.stderr
    finally:
        with psycopg.connect(pg_uri, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {s} CASCADE").format(s=sql.Identifier(schema)))
