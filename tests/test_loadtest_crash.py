"""Issue 19: a load test against a durable server whose postmaster is killed with SIGKILL.

A private embedded server (its own data directory under ``tmp_path``, PostgreSQL's durable
defaults: ``fsync`` and ``synchronous_commit`` on — the throw-away servers of the other
tests turn them off, see ``chatlab/db/server.py``) runs ``chatlab loadtest``; mid-run the
test reads ``postmaster.pid``, kills that process with SIGKILL (its backends die with it),
starts the server again on the same directory (crash recovery replays the WAL) and lets the
run finish.  The Locust users record every write the database acknowledged to them
(``$CHATLAB_LOADTEST_ACKLOG``, ``loadtest/acklog.py``).  Documented behaviour (README
"Reliability"): the clients reconnect, the calls made while the server was down are Locust
failures, the run completes (exit 0, report written), and every acknowledged write is in the
history afterwards, which keeps every invariant.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_TIME_S = 16
KILL_AFTER_ACKS = 120  # acknowledged writes before the kill: chats, messages and replies exist


def _count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def test_postmaster_killed_mid_load_loses_nothing_acknowledged(tmp_path_factory) -> None:
    import psutil
    import psycopg

    from chatlab.correctness.invariants import check_invariants
    from chatlab.db import server
    from loadtest import acklog

    base = tmp_path_factory.mktemp("k9")  # short: the unix socket lives in the data directory
    pgdata, out, acks_path = base / "pg", base / "out", base / "acks.jsonl"
    uri = server._start(pgdata)  # no settings: PostgreSQL's durable defaults
    proc = None
    try:
        with psycopg.connect(uri, autocommit=True) as conn:
            durable = {"fsync": conn.execute("SHOW fsync").fetchone()[0],
                       "synchronous_commit": conn.execute("SHOW synchronous_commit").fetchone()[0]}
        assert durable == {"fsync": "on", "synchronous_commit": "on"}, durable
        cmd = [sys.executable, "-m", "chatlab.cli", "loadtest", "baseline", "--run-time", str(RUN_TIME_S),
               "--time-scale", "120", "--set", "users.arrivals.rate=0.08", "--database-url", uri,
               "--keep-schema", "--out", str(out), "--no-progress"]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT),
                                                    acklog.ACKLOG_ENV: str(acks_path)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + 60
        while _count_lines(acks_path) < KILL_AFTER_ACKS:
            assert proc.poll() is None, f"the load test ended before the kill: {proc.communicate()}"
            assert time.monotonic() < deadline, "the load test acknowledged too little to test"
            time.sleep(0.1)
        # kill -9 the postmaster of this data directory (first line of postmaster.pid)
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        args = postmaster.cmdline()
        assert "-D" in args and Path(args[args.index("-D") + 1]).resolve() == pgdata.resolve(), args
        backends = postmaster.children()
        acked_before = _count_lines(acks_path)
        postmaster.send_signal(signal.SIGKILL)
        killed_at = time.monotonic() - started
        psutil.wait_procs([postmaster, *backends], timeout=15)  # backends exit when the postmaster dies
        assert not [p for p in backends if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(1.0)  # the server stays down a moment: clients fail and retry
        server._start(pgdata)  # the same data directory: crash recovery replays the WAL
        down_s = time.monotonic() - started - killed_at
        stdout, stderr = proc.communicate(timeout=RUN_TIME_S + 120)
        wall = time.monotonic() - started
        # the report is written, says the calls that failed while the server was down, and the run is no success
        assert proc.returncode == 1, (proc.returncode, stdout[-2000:], stderr[-2000:])
        assert "database calls failed" in stderr and len(stderr.strip().splitlines()) == 1, stderr[-2000:]
        assert (out / "summary.md").is_file() and (out / "loadtest.json").is_file()
        assert "database calls failed" in (out / "summary.md").read_text()
        schema = re.search(r"schema kept: (\S+)", stdout).group(1)
        import json

        results = json.loads((out / "loadtest.json").read_text())
        assert results["locust"]["failures"] > 0, "no call failed while the server was down?"
        # every write acknowledged to a client is in the recovered history
        acks = acklog.read(acks_path)
        kinds = Counter(a["ack"] for a in acks)
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("SET search_path TO {}").format(psycopg.sql.Identifier(schema)))
            chats = {i: active for i, active in conn.execute("SELECT id, is_active FROM chats")}
            replies = {(c, m) for c, m in conn.execute(
                "SELECT chat_id, id FROM messages WHERE sender_type = 'operator'")}
            user_msgs = dict(conn.execute(
                "SELECT chat_id, count(*) FROM messages WHERE sender_type = 'real_user' GROUP BY chat_id").fetchall())
            n_chats = conn.execute("SELECT count(*) FROM chats").fetchone()[0]
        lost = acklog.lost(acks, chats=chats, replies=replies, user_messages=user_msgs)
        assert not lost, f"{len(lost)} acknowledged writes are gone after the crash: {lost[:10]}"
        violations = check_invariants(uri, schema)
        assert violations == [], "\n".join(map(str, violations[:20]))
        assert results["integrity"]["double_assigned"] == 0 and results["integrity"]["over_capacity"] == 0
        assert min(kinds[k] for k in ("chat", "user_message", "reply", "end")) > 0, kinds
        assert len(acks) > acked_before, "nothing was acknowledged after the restart: clients did not reconnect"
        print(f"\n[crash] kill -9 of the postmaster at {killed_at:.1f} s (after {acked_before} acknowledged writes), "
              f"down {down_s:.1f} s; acknowledged {len(acks)} writes ({dict(kinds)}), lost 0; chats in the history "
              f"{n_chats}; Locust requests {results['locust']['requests']}, failures {results['locust']['failures']}; "
              f"violations 0; wall {wall:.0f} s; exit {proc.returncode}")
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        server._stop(pgdata)
        shutil.rmtree(base, ignore_errors=True)
