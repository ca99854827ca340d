"""How well do concurrent SKIP LOCKED claims scale?  (assign_chat_to_operator throughput)

Each client thread is one operator (max 1 chat) with its own connection, looping
``assign_chat_to_operator`` -> ``operator_message`` for a fixed time on a pre-filled queue.
A *claim* is a successful assign.  Printed per thread count: claims/s, and the ratio to the
single-thread baseline measured in the same run (ideal on this box: bounded by its cores,
since PostgreSQL does the work).

Second table (``--vacuum``): a longer single run with the schema's tuned autovacuum
settings versus PostgreSQL's defaults, first and last thirds compared, because a queue
table that is rewritten constantly slows down as dead tuples pile up in its indexes.

    .venv/bin/python benchmarks/bench_db_claims.py [--threads 1,4,16] [--seconds 3] [--policy exclude_last]
    .venv/bin/python benchmarks/bench_db_claims.py --vacuum --seconds 30

Uses ``DATABASE_URL`` if set, else a temporary embedded server (stopped afterwards).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatlab.db.client import ChatDB  # noqa: E402
from chatlab.db.migrate import drop_schema, migrate  # noqa: E402
from chatlab.db.server import temporary_server  # noqa: E402

_FILL = ("INSERT INTO chats (real_user_id, waiting_since, last_user_message_at) "
         "SELECT g, now() + g * interval '1 microsecond', now() FROM generate_series(1, %s) g")
_DEFAULT_AUTOVACUUM = ("ALTER TABLE chats RESET (fillfactor, autovacuum_vacuum_scale_factor, "
                       "autovacuum_vacuum_threshold, autovacuum_vacuum_insert_scale_factor, "
                       "autovacuum_vacuum_insert_threshold, autovacuum_analyze_scale_factor, "
                       "autovacuum_vacuum_cost_delay)")


@contextlib.contextmanager
def _server():
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
    else:
        with temporary_server(prefix="chatlab-bench-") as uri:
            yield uri


def run(uri: str, threads: int, seconds: float, policy: str, queue: int, *, default_autovacuum: bool = False,
        buckets: int = 1) -> list[float]:
    """Claims/s of ``threads`` operators over ``seconds``, split into ``buckets`` equal periods."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    migrate(uri, schema)
    try:
        with ChatDB(uri, schema) as db:
            if default_autovacuum:
                db._rows(_DEFAULT_AUTOVACUUM)
            ops = [db.create_operator(f"op{i}") for i in range(threads)]
            db._rows(_FILL, (queue,))
            db._rows("ANALYZE chats")
        counts = [[0] * buckets for _ in range(threads)]
        barrier = threading.Barrier(threads + 1)
        start_at: list[float] = []

        def worker(i: int) -> None:
            with ChatDB(uri, schema, application_name=f"bench{i}") as db:
                barrier.wait()
                t0 = start_at[0]
                while (elapsed := time.perf_counter() - t0) < seconds:
                    chat = db.assign_chat_to_operator(ops[i], policy)
                    if chat is None:
                        continue
                    db.operator_message(ops[i], chat, "answer")
                    counts[i][min(int(elapsed / seconds * buckets), buckets - 1)] += 1

        pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        start_at.append(time.perf_counter())
        barrier.wait()
        for t in pool:
            t.join()
        with ChatDB(uri, schema) as db:
            failed = [c.name for c in db.verify() if not c.passed]
        if failed:
            raise SystemExit(f"verification failed after the run: {failed}")
        return [sum(c[b] for c in counts) / (seconds / buckets) for b in range(buckets)]
    finally:
        drop_schema(uri, schema)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,4,16", help="comma-separated client thread counts")
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    ap.add_argument("--policy", default="exclude_last")
    ap.add_argument("--queue", type=int, default=0, help="pre-filled chats (default: enough for the run)")
    ap.add_argument("--vacuum", action="store_true", help="compare tuned vs default autovacuum instead")
    args = ap.parse_args()
    counts = [int(x) for x in args.threads.split(",") if x.strip()]
    queue = args.queue or int(12_000 * args.seconds)
    with _server() as uri:
        if args.vacuum:
            threads = max(counts)
            print(f"{threads} threads, {args.seconds:.0f} s, policy {args.policy}: claims/s in first/last third")
            print(f"{'autovacuum':<10} {'first':>9} {'last':>9} {'last/first':>10}")
            for label, default in (("tuned", False), ("default", True)):
                first, _, last = run(uri, threads, args.seconds, args.policy, queue,
                                     default_autovacuum=default, buckets=3)
                print(f"{label:<10} {first:>9.0f} {last:>9.0f} {last / first:>10.2f}")
            return 0
        print(f"policy {args.policy}, {args.seconds:.0f} s per row, claim = assign + reply on a pre-filled queue")
        print(f"{'threads':>7} {'claims/s':>9} {'vs 1 thread':>11}")
        baseline = None
        for n in ([1] + [c for c in counts if c != 1]):
            rate = run(uri, n, args.seconds, args.policy, queue)[0]
            baseline = baseline or rate
            print(f"{n:>7} {rate:>9.0f} {rate / baseline:>10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
