"""How many Locust users really run at once against PostgreSQL?  (gevent x psycopg check)

Each of N Locust users runs ``SELECT pg_sleep(0.01)`` back to back for a few seconds.  With
gevent and psycopg cooperating, the server sleeps for all of them at the same time, so the
ideal rate is N x 100 req/s; the script prints the achieved rate and its ratio to the ideal.

The same-run baseline is the *wrong* import order (psycopg imported before locust, so
psycopg picks its blocking C wait function): there the users take turns and the rate
stays near 100 req/s whatever N is.  That is the failure the locustfile guard prevents.

    .venv/bin/python benchmarks/bench_locust_concurrency.py [--users 10,50] [--seconds 5]

Uses ``DATABASE_URL`` if set (loopback only!), else a temporary embedded server.
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

PROBE = ROOT / "benchmarks" / "probes" / "sleep_locustfile.py"
# Run Locust's CLI after importing psycopg first: reproduces the blocking setup on purpose.
WRONG_ORDER_PRELUDE = "import psycopg, runpy, sys; sys.argv[0] = 'locust'; runpy.run_module('locust', run_name='__main__', alter_sys=True)"


def probe(dsn: str, users: int, seconds: float, sleep_s: float, *, wrong_order: bool, workdir: Path) -> dict:
    """One Locust run of the probe; returns its steady-state figures."""
    result_file = workdir / f"probe_{users}_{'wrong' if wrong_order else 'right'}.json"
    env = {"CHATLAB_DSN": dsn, "CHATLAB_SLEEP_S": str(sleep_s), "CHATLAB_PROBE_RESULT": str(result_file)}
    extra: list[str] = []
    if wrong_order:
        env["CHATLAB_PROBE_ALLOW_BLOCKING"] = "1"
    run = run_locust(
        PROBE, users=users, spawn_rate=users, run_time_s=seconds, out_dir=workdir,
        csv_name=f"locust_{result_file.stem}", env=env, hard_timeout_s=seconds + 60,
        extra=extra, python_prelude=WRONG_ORDER_PRELUDE if wrong_order else None,
    )
    if not result_file.exists():
        raise SystemExit(f"probe with {users} users wrote no result; Locust log:\n{run.log_tail()}")
    data = json.loads(result_file.read_text())
    data["ideal_rps"] = users / sleep_s
    data["ratio"] = data["rps"] / data["ideal_rps"]
    data["order"] = "wrong (psycopg first)" if wrong_order else "right (locust first)"
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", default="10,50", help="comma-separated user counts (default 10,50)")
    ap.add_argument("--seconds", type=float, default=5.0, help="run time per probe (default 5)")
    ap.add_argument("--sleep", type=float, default=0.01, help="pg_sleep seconds per request (default 0.01)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the wrong-import-order baseline")
    args = ap.parse_args()
    counts = [int(x) for x in args.users.split(",") if x.strip()]
    plan = [(n, False) for n in counts] + ([] if args.no_baseline else [(n, True) for n in counts])
    rows = []
    with session_database() as dsn, tempfile.TemporaryDirectory(prefix="chatlab-bench-") as tmp:
        for users, wrong in tqdm(plan, desc="locust probes", unit="run"):
            rows.append(probe(dsn, users, args.seconds, args.sleep, wrong_order=wrong, workdir=Path(tmp)))
    print(f"\n{'users':>5}  {'import order':<22} {'wait fn':<10} {'req/s':>8} {'ideal':>8} {'ratio':>6}")
    for r in rows:
        print(f"{r['users']:>5}  {r['order']:<22} {r['wait_function']:<10} {r['rps']:>8.0f} "
              f"{r['ideal_rps']:>8.0f} {r['ratio']:>6.1%}")
    by = {(r["users"], r["order"].startswith("wrong")): r for r in rows}
    for n in counts:
        if (n, True) in by:
            speedup = by[(n, False)]["rps"] / max(by[(n, True)]["rps"], 1e-9)
            print(f"{n} users: right order is {speedup:.1f}x the wrong-order baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
