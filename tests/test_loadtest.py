"""Locust against a real PostgreSQL: do the users really run concurrently? (flows: test_loadtest_flows.py)

Locust always runs in a child process (never in pytest's, which has psycopg imported).
Everything targets the session's server (``pg_uri`` in conftest: loopback/unix socket) and is bounded in time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


from loadtest.locustproc import ROOT, run_locust

PROBE = ROOT / "benchmarks" / "probes" / "sleep_locustfile.py"
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"


def test_locust_users_really_run_concurrently(pg_uri: str, tmp_path: Path) -> None:
    """20 users x back-to-back 10 ms queries must reach well over half of 20 x 100 req/s."""
    users, sleep_s = 20, 0.01
    result_file = tmp_path / "probe.json"
    run = run_locust(PROBE, users=users, spawn_rate=users, run_time_s=3, out_dir=tmp_path,
                     env={"CHATLAB_DSN": pg_uri, "CHATLAB_SLEEP_S": str(sleep_s),
                          "CHATLAB_PROBE_RESULT": str(result_file)},
                     hard_timeout_s=60)
    assert run.returncode == 0, run.log_tail()
    probe = json.loads(result_file.read_text())
    assert probe["wait_function"] != "wait_c"
    assert probe["failures"] == 0
    ideal = users / sleep_s
    assert probe["rps"] > 0.5 * ideal, f"only {probe['rps']:.0f} req/s of an ideal {ideal:.0f}: users are serialised"
    # Locust's own statistics saw the same requests, as successful "sql" requests
    assert run.count("probe_sleep", "sql") >= probe["requests"] > 0
    assert Path(f"{run.csv_prefix}_stats.csv").exists()


def test_locustfile_refuses_to_run_when_psycopg_was_imported_first(tmp_path: Path) -> None:
    """The guard turns the silent serialisation into a loud start-up failure (the real locustfile)."""
    code = ("import psycopg, runpy, sys; sys.argv[0] = 'locust'; "
            "runpy.run_module('locust', run_name='__main__', alter_sys=True)")
    proc = subprocess.run(
        [sys.executable, "-c", code, "-f", str(LOCUSTFILE), "--headless", "-u", "1", "-r", "1", "--run-time", "1s"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={"CHATLAB_DSN": "postgresql:///nowhere", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode != 0
    assert "wait_c" in proc.stderr + proc.stdout
