"""Issue 19: a distributed load test (master + two local workers) survives losing a worker.

``chatlab loadtest baseline --expect-workers 2 --local-workers 2`` runs against the real
PostgreSQL; mid-run the test SIGKILLs the worker that runs the housekeeper (the hard case:
the jobs must come back elsewhere) and that also plays some of the operators.  Documented
behaviour (README "Beyond one machine"): Locust marks the worker missing after ~3 s and,
with ``--enable-rebalancing``, hands its users to the survivor, whose respawned Operator and
Housekeeper users claim the identities the dead worker's connections no longer lock; every
chat the dead worker's operators held is then released by the housekeeper, answered by the
operator's new client, or ended; the run completes, writes its report with a note, and
exits 1 (its numbers are not the scenario's: the dead worker's share of arrivals after its
death is not played).  The history must keep every invariant.

Which process is which worker: the workers are the CLI's child processes whose command
line has ``--worker``; each writes its pid into ``locust_run_info.json.worker<N>`` at the
start, and its connections are named ``chatlab-<role>-w<N>``, so ``pg_locks`` (the advisory
claims) tells which worker plays which operator and which runs the housekeeper.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RUN_TIME_S = 20  # wall seconds of the load test; at K = 120: 2,400 scenario seconds
KILL_AFTER_S = 7.0  # wall seconds after the first claims: operators hold chats by then
CLAIMS = """
SELECT a.application_name, l.objid::bigint, l.classid::bigint
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
  AND a.application_name ~ '^chatlab-(operator|housekeeper)-w[0-9]+$'
"""
HOUSEKEEPER_KEY = 2**32 - 1  # the housekeeper's key -1 as pg_locks shows it (an oid)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _claims(conn: Any) -> dict[str, Any]:
    """{'housekeeper': worker index or None, 'operators': {operator id: worker index}}."""
    out: dict[str, Any] = {"housekeeper": None, "operators": {}, "namespaces": set()}
    for name, key, namespace in conn.execute(CLAIMS).fetchall():
        out["namespaces"].add(int(namespace))
        worker = int(name.rsplit("-w", 1)[1])
        if name.startswith("chatlab-housekeeper") and key == HOUSEKEEPER_KEY:
            out["housekeeper"] = worker
        elif name.startswith("chatlab-operator"):
            out["operators"][int(key)] = worker
    return out


def _wait_dead(proc: Any) -> None:
    """Until the killed worker is gone (a zombie until the CLI, its parent, reaps it at the end)."""
    import psutil

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    raise AssertionError(f"worker {proc.pid} did not die on SIGKILL")


def _worker_pids(out: Path) -> dict[int, int]:
    """worker index -> pid, from the run-info files the workers write when the test starts."""
    pids = {}
    for path in out.glob("locust_run_info.json.worker*"):
        try:
            info = json.loads(path.read_text())
        except ValueError:
            continue  # being written
        pids[int(path.name.rsplit("worker", 1)[1])] = int(info["pid"])
    return pids


def test_killed_worker_is_taken_over_and_the_history_holds(pg_uri: str, tmp_path: Path) -> None:
    import psutil
    import psycopg

    from chatlab.correctness.invariants import check_invariants
    from chatlab.db.migrate import drop_schema

    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "chatlab.cli", "loadtest", "baseline", "--expect-workers", "2",
           "--local-workers", "2", "--master-port", str(_free_port()), "--run-time", str(RUN_TIME_S),
           "--time-scale", "120",
           "--set", "users.arrivals.rate=0.08",  # twice baseline's: the operators hold chats when one dies
           "--database-url", pg_uri, "--keep-schema", "--out", str(out), "--no-progress"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    schema = None
    try:
        with psycopg.connect(pg_uri, autocommit=True) as conn:
            # 1. wait until both workers run, every operator is claimed and the housekeeper too
            deadline, first_claims = time.monotonic() + 90, None
            while True:
                assert proc.poll() is None, f"the load test ended before the kill: {proc.communicate()}"
                assert time.monotonic() < deadline, "the distributed load test never got going"
                claims, pids = _claims(conn), _worker_pids(out)
                if len(claims["operators"]) == 6 and claims["housekeeper"] is not None and len(pids) == 2:
                    first_claims = first_claims or time.monotonic()
                    if time.monotonic() - first_claims >= KILL_AFTER_S:
                        break
                time.sleep(0.2)
            victim = claims["housekeeper"]
            survivor = next(i for i in pids if i != victim)
            victim_ops = sorted(op for op, w in claims["operators"].items() if w == victim)
            assert victim_ops, f"the housekeeper's worker plays no operator: {claims}"
            worker = psutil.Process(pids[victim])
            assert "--worker" in worker.cmdline() and worker.ppid() == proc.pid, worker.cmdline()
            # the run's schema: the one whose name gives the claims' namespace (loadtest.runtime)
            names = [n for (n,) in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'lt_baseline_%%'")]
            (schema,) = [n for n in names if zlib.crc32(n.encode()) in claims["namespaces"]]
            # 2. SIGKILL it; what its operators hold once its connections are gone is what it left
            worker.send_signal(signal.SIGKILL)
            killed_at_wall = time.monotonic() - started
            _wait_dead(worker)
            time.sleep(0.5)  # its backends notice the closed sockets and exit (locks released)
            conn.execute(psycopg.sql.SQL("SET search_path TO {}").format(psycopg.sql.Identifier(schema)))
            (killed_at,) = conn.execute("SELECT clock_timestamp()").fetchone()
            left = conn.execute("SELECT id, chat_id, operator_id FROM chat_assignments "
                                "WHERE released_at IS NULL AND operator_id = ANY(%s)", (victim_ops,)).fetchall()
            assert left, "the dead worker's operators held no chat: nothing to check"
            # 3. the survivor takes over the housekeeper and every operator
            taken_over = None
            while proc.poll() is None and taken_over is None:
                claims = _claims(conn)
                if claims["housekeeper"] == survivor and set(claims["operators"].values()) == {survivor} \
                        and len(claims["operators"]) == 6:
                    taken_over = time.monotonic() - started - killed_at_wall
                time.sleep(0.2)
            assert taken_over is not None, f"the survivor never took over the housekeeper and operators: {claims}"
        stdout, stderr = proc.communicate(timeout=RUN_TIME_S + 120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    wall = time.monotonic() - started
    try:
        # 4. the run completed, wrote its report, said what happened and exited 1 (documented)
        assert proc.returncode == 1, (proc.returncode, stdout[-2000:], stderr[-2000:])
        assert stderr.strip().splitlines()[-1].startswith("chatlab loadtest: the run lost 1 Locust worker"), stderr
        assert "Traceback" not in stderr
        results = json.loads((out / "loadtest.json").read_text())
        assert (out / "summary.md").is_file()
        assert [w["worker_index"] for w in results["workers_lost"]] == [victim], results["workers_lost"]
        assert any("lost 1 Locust worker" in n for n in results["notes"]), results["notes"]
        assert results["integrity"]["double_assigned"] == 0 and results["integrity"]["over_capacity"] == 0
        assert not [p for p in psutil.Process().children(recursive=True) if "locust" in " ".join(p.cmdline())]
        # 5. from the history: nothing the dead worker's operators held was left unserved
        with psycopg.connect(pg_uri, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("SET search_path TO {}").format(psycopg.sql.Identifier(schema)))
            # released by the housekeeper (idle / stuck release), answered by the operator's new
            # client on the survivor (the reply closes the hold, or it stays held and answered),
            # or ended; anything else is a chat the dead worker left unserved
            fate: dict[str, int] = {}
            for hold_id, chat_id, op in left:
                released, reason = conn.execute("SELECT released_at, release_reason FROM chat_assignments "
                                                "WHERE id = %s", (hold_id,)).fetchone()
                answered = conn.execute("SELECT count(*) FROM messages WHERE chat_id = %s AND sender_type = "
                                        "'operator' AND created_at > %s", (chat_id, killed_at)).fetchone()[0]
                active = conn.execute("SELECT is_active FROM chats WHERE id = %s", (chat_id,)).fetchone()[0]
                how = (f"released: {reason}" if released is not None else "answered by the new client" if answered
                       else "ended" if not active else None)
                assert how is not None, f"chat {chat_id} held by operator {op} of the dead worker was never served again"
                fate[how] = fate.get(how, 0) + 1
            jobs_after = conn.execute("SELECT count(*) FROM chat_events WHERE event IN ('idle_release', "
                                      "'stuck_release') AND at > %s", (killed_at,)).fetchone()[0]
            users = conn.execute("SELECT count(*) FROM chats WHERE created_at > %s", (killed_at,)).fetchone()[0]
        violations = check_invariants(pg_uri, schema)
        assert violations == [], "\n".join(map(str, violations[:20]))
        assert users > 0, "the survivor opened no chats after the kill"
        print(f"\n[distributed] killed worker {victim} (housekeeper + operators {victim_ops}) at {killed_at_wall:.1f} s; "
              f"survivor took over in {taken_over:.1f} s; held by the dead worker: {len(left)} -> {fate}; housekeeping releases after the kill: {jobs_after}; chats opened "
              f"after: {users}; holds {results['integrity']['assignments']}; Locust requests "
              f"{results['locust']['requests']}, failures {results['locust']['failures']}; violations 0; "
              f"wall {wall:.0f} s; exit {proc.returncode}")
    finally:
        if schema:
            drop_schema(pg_uri, schema)
