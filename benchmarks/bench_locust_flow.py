"""Throughput of the chat flow's SQL functions under Locust: 1 user versus N users.

Each Locust user is an operator looping open chat -> assign -> reply -> end with no
think time (``benchmarks/probes/flow_locustfile.py``).  The baseline is the same run with one
user, measured in this run; the ratio says how much concurrency the functions (row
locks, ``FOR UPDATE SKIP LOCKED``) and this server turn into throughput.

    .venv/bin/python benchmarks/bench_locust_flow.py [--users 1,10,30] [--seconds 5] [--policy exclude_last]

Uses ``DATABASE_URL`` if set (loopback only!), else a temporary embedded server.  Each
user count gets its own fresh schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatlab.db.server import session_database  # noqa: E402
from loadtest.locustproc import run_locust  # noqa: E402
from loadtest.session import schema_name  # noqa: E402

FLOW = ROOT / "benchmarks" / "probes" / "flow_locustfile.py"


def probe(dsn: str, users: int, seconds: float, policy: str, workdir: Path) -> dict:
    """One run with ``users`` operators; returns the steady-state rates."""
    from chatlab.db.client import ChatDB
    from chatlab.db.migrate import drop_schema, migrate

    schema = schema_name("bench", f"flow{users}")
    migrate(dsn, schema)
    try:
        with ChatDB(dsn, schema) as db:
            for i in range(1, users + 1):
                db.create_operator(f"op-{i}", 1, False)
        result_file = workdir / f"probe_flow_{users}.json"
        run = run_locust(FLOW, users=users, spawn_rate=users, run_time_s=seconds, out_dir=workdir,
                         csv_name=f"flow_{users}", hard_timeout_s=seconds + 60,
                         env={"CHATLAB_DSN": dsn, "CHATLAB_SCHEMA": schema, "CHATLAB_POLICY": policy,
                              "CHATLAB_PROBE_RESULT": str(result_file)})
        if not result_file.exists():
            raise SystemExit(f"flow probe with {users} users wrote no result; Locust log:\n{run.log_tail()}")
        data = json.loads(result_file.read_text())
        # Locust warns when its own process saturates a core: then the client, not the database, is the limit
        data["locust_cpu_bound"] = "CPU usage above" in run.log_path.read_text(errors="replace")
        return data
    finally:
        drop_schema(dsn, schema)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", default="1,10,30", help="comma-separated user counts; the first is the baseline")
    ap.add_argument("--seconds", type=float, default=5.0, help="run time per probe (default 5)")
    ap.add_argument("--policy", default="exclude_last", help="assign policy (default exclude_last)")
    args = ap.parse_args()
    counts = [int(x) for x in args.users.split(",") if x.strip()]
    with session_database() as dsn, tempfile.TemporaryDirectory(prefix="chatlab-bench-") as tmp:
        rows = [probe(dsn, n, args.seconds, args.policy, Path(tmp)) for n in tqdm(counts, desc="flow probes", unit="run")]
    base = rows[0]
    print(f"\n{'users':>5} {'req/s':>8} {'assign/s':>9} {'failures':>8} {'x baseline':>10}  locust CPU-bound")
    for r in rows:
        print(f"{r['users']:>5} {r['rps']:>8.0f} {r['assignments_per_s']:>9.0f} {r['failures']:>8} "
              f"{r['rps'] / max(base['rps'], 1e-9):>10.2f}  {'yes' if r['locust_cpu_bound'] else 'no'}")
    print("(one Locust process; when it is CPU-bound, add workers: chatlab loadtest --expect-workers N)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
